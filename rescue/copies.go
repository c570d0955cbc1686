package rescue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/merge"
	"github.com/vzsalvage/vzsalvage/report"
)

// Copies of the newest backup.
//
// An --also backup with the newest's VMA UUID is a copy of the same backup
// (a replica, a second disk). Before anything is decoded, the copies are
// merged with the newest at the compressed-byte level (package merge):
// where they differ, the bytes that decode, and finally those that make
// the stream's checksum match, are taken. When the merge is verified, the
// merged archive is the original bit for bit: it is read in the newest's
// place and the copies are needed no more. When it is not (the damage
// overlaps), the merged archive, with the least damage, is read in the
// newest's place and the copies, the newest among them, stay donors (the
// second decoding pass) and fill what is left, as older nights do; where a
// copy and the merged archive both decode a cluster clean but differently,
// the cluster is damaged (combineDevice).

// merged is the outcome of merging the newest backup with its copies.
type merged struct {
	read     string         // the archive to read as the newest
	distrust []damage.Range // its ranges whose bytes the merge could not verify
	also     []string       // the --also backups still to combine
	acct     *report.Merge
	paths    []string // the newest and its copies
}

// mergeCopies merges the newest backup with the copies among also, into
// work (kept until the rescue ends).
func mergeCopies(path, work string, opt Options) (*merged, error) {
	mg := &merged{read: path, also: opt.Also}
	copies, others := splitCopies(path, opt.Also)
	if len(copies) == 0 {
		return mg, nil
	}
	dir := filepath.Join(work, "merged")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, filepath.Base(path)) // its name says the guest and time
	mg.paths = append([]string{path}, copies...)
	opt.Progress.Phase("merge the copies of "+filepath.Base(path), 0)
	res, err := merge.Merge(mg.paths, merge.Options{Output: out, Progress: opt.Progress.Set, Context: opt.Context})
	if errors.Is(err, merge.ErrNotCopies) {
		mg.acct = &report.Merge{Copies: copies, Note: fmt.Sprintf("not merged: %v; the copies were used as donors", err)}
		return mg, nil
	}
	if err != nil {
		return nil, err
	}
	mg.read = out
	mg.acct = &report.Merge{Copies: copies, Places: len(res.Regions), DifferingBytes: res.Differing, Trials: res.Trials,
		Verified: res.Verified, Damage: map[string]*damage.Map{}}
	dm := res.Damaged()
	for i, p := range mg.paths {
		if !dm[i].Empty() {
			mg.acct.Damage[p] = dm[i]
		}
	}
	if res.Verified {
		mg.also = others
		mg.acct.Note = fmt.Sprintf("merged with %s where they differ (%s in %d places): the %s checksum matches, the merged archive is the original bit for bit and was read in its place%s",
			donorNames(copies), ui.Bytes(res.Differing), len(res.Regions), res.Compression, damagedCopies(mg.paths, dm))
		return mg, nil
	}
	mg.distrust = res.Unverified()
	// The archive itself joins its copies: where the merged archive and
	// any of them both decode a cluster clean but differently, one is
	// silently wrong, and the cluster is listed as damaged.
	mg.also = append(append([]string(nil), opt.Also...), path)
	mg.acct.Note = fmt.Sprintf("merged with %s where they differ (%s in %d places), not verified: %s; the merged archive (the least damage) was read in its place, the copies fill what is left, and clusters where they disagree are listed as damaged",
		donorNames(copies), ui.Bytes(res.Differing), len(res.Regions), res.Why())
	return mg, nil
}

// splitCopies sorts the --also backups into copies of the newest (the
// same VMA UUID) and the others.
func splitCopies(path string, also []string) (copies, others []string) {
	nh, err := extract.ReadHead(path)
	if err != nil || nh.Header == nil || nh.Header.UUID == [16]byte{} {
		return nil, also
	}
	for _, p := range also {
		oh, err := extract.ReadHead(p)
		if err == nil && oh.Header != nil && oh.Header.UUID == nh.Header.UUID {
			copies = append(copies, p)
		} else {
			others = append(others, p)
		}
	}
	return copies, others
}

// damagedCopies says where each file was damaged, as a merge verified it.
func damagedCopies(paths []string, dm []*damage.Map) string {
	s := ""
	for i, p := range paths {
		if !dm[i].Empty() {
			s += fmt.Sprintf("; %s was damaged in %s", filepath.Base(p), ui.Bytes(dm[i].Total(damage.Tainted)))
		}
	}
	return s
}

// sidecarOf returns the checker of the archive at path (its sidecar), to
// read a merged archive with, or nil.
func sidecarOf(path string) extract.Checker {
	if extract.Sidecars == nil {
		return nil
	}
	chk, err := extract.Sidecars(path)
	if err != nil {
		return nil
	}
	return chk
}
