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
	// Verdict is the result of the last check when known: "intact" or
	// "damaged"; "" when the sidecar's content was not read.
	Verdict string `json:"verdict,omitempty"`
}

// ProtectionFunc says what is known of the archive at path (a path on this
// machine, already under the doctor's root).
type ProtectionFunc func(path string) Protection

// SidecarByMtime is the ProtectionFunc used until the doctor reads
// sidecars: an archive is protected when its sidecar exists
// (ARCHIVE.vzsalvage beside it, or DIR/NAME.vzsalvage when dir is set),
// dated by the sidecar's modification time; the verdict stays unknown.
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

// String says it for a human: "protected (sidecar present, dated ...)" or
// "not protected by vzsalvage (no sidecar)".
func (p Protection) String() string {
	date := p.Date.Format("2006-01-02 15:04")
	switch {
	case !p.Present:
		return "not protected by vzsalvage (no sidecar)"
	case p.Verdict == "damaged":
		return "DAMAGED at its last check (sidecar dated " + date + ")"
	case p.Verdict == "intact":
		return "verified intact (sidecar dated " + date + ")"
	}
	return "protected (sidecar present, dated " + date + ")"
}
