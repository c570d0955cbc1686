package doctor

import (
	"os"
	"path/filepath"
	"time"
)

// Protection is what vzsalvage knows of an archive's last check.
type Protection struct {
	// Sidecar is where the archive's vzsalvage sidecar is, or would be.
	Sidecar string `json:"sidecar,omitempty"`
	Present bool   `json:"present"`
	// Date is when the sidecar was written.
	Date time.Time `json:"date,omitzero"`
	// Checked is when the archive was last re-checked against it (scrub),
	// zero when never.
	Checked time.Time `json:"checked,omitzero"`
	// Verdict is the result of the last check: VerdictIntact,
	// VerdictRepairable, VerdictDamaged, VerdictChanged, VerdictUnreadable,
	// or "" when unknown.
	Verdict string `json:"verdict,omitempty"`
	// Detail says more about a verdict other than intact.
	Detail string `json:"detail,omitempty"`
}

// Verdicts of a Protection.
const (
	VerdictIntact     = "intact"     // bit for bit what was verified
	VerdictRepairable = "repairable" // damaged; the sidecar's parity rebuilds it
	VerdictDamaged    = "damaged"    // damaged beyond what the sidecar rebuilds
	VerdictChanged    = "changed"    // size or time differ from what was protected, not re-checked since
	VerdictUnreadable = "unreadable" // a sidecar is there but cannot be read
)

// ProtectionFunc says what is known of the archive at path (a path on this
// machine, already under the doctor's root).
type ProtectionFunc func(path string) Protection

// SidecarByMtime is the ProtectionFunc of a doctor that does not read
// sidecars (the tests, and the package on its own): an archive is
// protected when its sidecar exists (ARCHIVE.vzsalvage beside it, or
// DIR/NAME.vzsalvage when dir is set), dated by the sidecar's modification
// time; the verdict stays unknown. The command wires protect.Status.
func SidecarByMtime(dir string) ProtectionFunc {
	return func(path string) Protection {
		p := Protection{Sidecar: path + ".vzsalvage"}
		if dir != "" {
			p.Sidecar = filepath.Join(dir, filepath.Base(path)+".vzsalvage")
		}
		if st, err := os.Stat(p.Sidecar); err == nil && st.Mode().IsRegular() {
			p.Present, p.Date = true, st.ModTime()
		}
		return p
	}
}

// String says it for a human: "protected (sidecar present, dated ...)",
// "not protected by vzsalvage (no sidecar)", "DAMAGED at its last check ...".
func (p Protection) String() string {
	day := func(t time.Time) string { return t.Format("2006-01-02 15:04") }
	last := p.Date
	if p.Checked.After(last) {
		last = p.Checked
	}
	detail := ""
	if p.Detail != "" {
		detail = ": " + p.Detail
	}
	switch {
	case !p.Present && p.Verdict == VerdictUnreadable:
		return "sidecar unreadable" + detail
	case !p.Present:
		return "not protected by vzsalvage (no sidecar)"
	case p.Verdict == VerdictDamaged:
		return "DAMAGED at its last check (" + day(last) + ")" + detail
	case p.Verdict == VerdictRepairable:
		return "damaged at its last check (" + day(last) + "), repairable from its sidecar" + detail
	case p.Verdict == VerdictChanged:
		return "changed since it was protected (" + day(p.Date) + ") and not checked since" + detail
	case p.Verdict == VerdictIntact && !p.Checked.IsZero():
		return "protected, intact at its last check (" + day(p.Checked) + ")"
	case p.Verdict == VerdictIntact:
		return "protected, verified intact when written (" + day(p.Date) + ")"
	}
	return "protected (sidecar present, dated " + day(p.Date) + ")"
}
