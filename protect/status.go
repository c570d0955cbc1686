package protect

import (
	"encoding/json"
	"os"
	"time"
)

// Protection is what is known of an archive's protection (for `doctor`).
type Protection struct {
	// Sidecar is the sidecar's path; Present says it exists and reads.
	Sidecar string `json:"sidecar"`
	Present bool   `json:"present"`
	// Error says why a sidecar that is there cannot be read.
	Error string `json:"error,omitempty"`
	// Written is when protect wrote it; Verify what protect's verification
	// found then.
	Written time.Time    `json:"written,omitzero"`
	Verify  VerifyResult `json:"verify"`
	// LastCheck is the latest scrub's result (nil when never scrubbed).
	LastCheck *Check `json:"last_check,omitempty"`
	// Matches says the archive's size and mtime are still those protected.
	Matches bool `json:"matches"`
}

// Status reports an archive's protection: whether its sidecar is there,
// when it was written, and the last verification or scrub result.
func Status(archivePath, sidecarDir string) (Protection, error) {
	st := Protection{Sidecar: SidecarPath(archivePath, sidecarDir)}
	sc, err := Find(archivePath, sidecarDir)
	if err != nil {
		st.Error = err.Error()
		return st, nil
	}
	if sc == nil {
		return st, nil
	}
	defer sc.Close()
	st.Sidecar, st.Present = sc.Path, true
	st.Written, _ = time.Parse(time.RFC3339, sc.Header.Created)
	st.Verify = sc.Header.Verify
	if fi, err := os.Stat(archivePath); err == nil {
		st.Matches = fi.Size() == sc.Header.Archive.Size && fi.ModTime().Unix() == sc.Header.Archive.MTime
	}
	if b, err := os.ReadFile(sc.Path + ".check"); err == nil {
		var c Check
		if json.Unmarshal(b, &c) == nil {
			st.LastCheck = &c
		}
	}
	return st, nil
}
