package protect

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/cespare/xxhash/v2"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/merge"
)

// Repair with copies of the archive (RepairOptions.Copies).
//
// With a sidecar, every damaged 4 KiB chunk is first looked for in the
// copies: a copy's chunk whose hash is the sidecar's is the original's, so
// the copies repair whatever damage they do not share, and the parity
// what is left. Without a sidecar, the copies are merged at the level of
// their compressed bytes (package merge): where they differ, trial
// decoding and the stream's checksum choose.

// patched is the archive with some of its chunks taken from copies.
type patched struct {
	base io.ReaderAt
	ps   []patch // by offset, disjoint
}

type patch struct {
	off, n int64
	src    io.ReaderAt
}

// ReadAt implements io.ReaderAt; past the archive's end (a truncated
// file) it returns the bytes patches hold, as far as they reach without a
// gap.
func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.base.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return n, err
	}
	valid := int64(n)
	end := off + int64(len(b))
	i := sort.Search(len(p.ps), func(i int) bool { return p.ps[i].off+p.ps[i].n > off })
	for ; i < len(p.ps) && p.ps[i].off < end; i++ {
		pc := p.ps[i]
		lo, hi := max(pc.off, off), min(pc.off+pc.n, end)
		if _, err := pc.src.ReadAt(b[lo-off:hi-off], lo); err != nil && err != io.EOF {
			return n, err
		}
		if lo-off <= valid {
			valid = max(valid, hi-off)
		}
	}
	if valid < int64(len(b)) {
		return int(valid), io.EOF
	}
	return len(b), nil
}

// fromCopy looks for the chunk [off, off+n) whose hash is want in the
// copies and, when one holds it, patches it in.
func (r *repairer) fromCopy(off, n int64, want uint64) bool {
	if len(r.copies) == 0 {
		return false
	}
	if int64(len(r.chunk)) < n {
		r.chunk = make([]byte, n)
	}
	b := r.chunk[:n]
	for _, c := range r.copies {
		if got, _ := c.ReadAt(b, off); int64(got) == n && xxhash.Sum64(b) == want {
			r.src.ps = append(r.src.ps, patch{off: off, n: n, src: c})
			r.rr.FromCopies += n
			return true
		}
	}
	return false
}

// openCopies opens the copies read-only.
func openCopies(paths []string) ([]*os.File, error) {
	var fs []*os.File
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			for _, g := range fs {
				g.Close()
			}
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// findSidecar returns the sidecar of the archive, or of one of its copies
// (the same archive's record), or nil.
func findSidecar(path string, opt RepairOptions) (*Sidecar, error) {
	for _, p := range append([]string{path}, opt.Copies...) {
		sc, err := Find(p, opt.SidecarDir)
		if sc != nil || err != nil {
			return sc, err
		}
	}
	return nil, nil
}

// repairFromCopies merges the archive with its copies when there is no
// sidecar.
func repairFromCopies(path string, opt RepairOptions) (*RepairResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	target := opt.Output
	if opt.InPlace {
		target = path
	}
	res, err := merge.Merge(append([]string{path}, opt.Copies...), merge.Options{Output: target, OnlyVerified: opt.InPlace, Progress: opt.Progress, Context: opt.Context})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rr := &RepairResult{Archive: path, Size: st.Size(), Merge: res, Damage: &damage.Map{}, Unrepairable: &damage.Map{},
		Output: res.Output}
	if res.Verified {
		rr.Damage = res.Damaged()[0]
		rr.Intact = rr.Damage.Empty()
		rr.Complete = true
		rr.FromCopies = rr.Damage.Total(damage.Tainted)
		return rr, nil
	}
	for _, rg := range res.Regions {
		rr.Damage.Add(rg.Offset, rg.Length, damage.Tainted)
		if rg.How == merge.HowUnresolved {
			rr.Unrepairable.Add(rg.Offset, rg.Length, damage.Tainted)
		}
	}
	rr.Notes = append(rr.Notes, res.Why())
	if opt.InPlace {
		rr.Notes = append(rr.Notes, "the merge is not verified: the archive was left as it was")
	}
	return rr, nil
}
