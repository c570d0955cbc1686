package merge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sort"

	"github.com/vzsalvage/vzsalvage/report"
)

// view is the archive the copies make with one variant chosen per region:
// outside the regions every copy holds the same bytes.
type view struct {
	cs     []*copyFile
	ref    int // a longest copy
	regs   []region
	choice []int // variant index per region
	size   int64
}

func newView(cs []*copyFile, regs []region, choice []int) *view {
	v := &view{cs: cs, regs: regs, choice: choice}
	for i, c := range cs {
		if c.size > cs[v.ref].size {
			v.ref = i
		}
	}
	v.size = cs[v.ref].size
	if k := len(regs) - 1; k >= 0 && regs[k].variants[choice[k]].end {
		v.size = regs[k].off
	}
	return v
}

// ReadAt implements io.ReaderAt.
func (v *view) ReadAt(p []byte, off int64) (int, error) {
	if off >= v.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), v.size-off)]
	done := 0
	i := sort.Search(len(v.regs), func(i int) bool { return v.regs[i].end > off })
	for done < len(p) {
		o := off + int64(done)
		src, hi := v.ref, off+int64(len(p))
		switch {
		case i < len(v.regs) && v.regs[i].off <= o:
			src = v.regs[i].variants[v.choice[i]].copy
			hi = min(hi, v.regs[i].end)
			i++
		case i < len(v.regs):
			hi = min(hi, v.regs[i].off)
		}
		n, err := v.cs[src].f.ReadAt(p[done:done+int(hi-o)], o)
		done += n
		if err != nil && !(err == io.EOF && int64(n) == hi-o) {
			return done, err
		}
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// write writes the view to path (under a temporary name, renamed when
// complete) and returns its SHA-256.
func (v *view) write(ctx context.Context, path string, progress func(done, total int64)) (string, error) {
	out, err := report.CreateTemp(path)
	if err != nil {
		return "", err
	}
	defer func() {
		if out != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	h := sha256.New()
	buf := make([]byte, scanBlock)
	for off := int64(0); off < v.size; off += scanBlock {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if progress != nil {
			progress(off, v.size)
		}
		b := buf[:min(int64(scanBlock), v.size-off)]
		if _, err := v.ReadAt(b, off); err != nil && err != io.EOF {
			return "", err
		}
		h.Write(b)
		if _, err := out.Write(b); err != nil {
			return "", report.TargetError(err, out.Name(), path)
		}
	}
	name := out.Name()
	if err := out.Chmod(0o644); err != nil {
		return "", report.TargetError(err, name, path)
	}
	if err := out.Sync(); err != nil {
		return "", report.TargetError(err, name, path)
	}
	if err := out.Close(); err != nil {
		return "", report.TargetError(err, name, path)
	}
	out = nil
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return "", report.TargetError(err, name, path)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
