package merge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sort"
)

// Where the copies differ.
//
// The copies are read side by side; a byte differs when the copies do not
// all hold it (a shorter copy lacks it) or do not all agree on it.
// Differing bytes closer than mergeGap make one region: a garbage run
// agrees with the original here and there by chance, and its region must
// not split there. In a region, each copy that holds all of it holds one
// variant (identical runs are one variant with several votes); a copy that
// ends exactly where the last region starts votes for the archive ending
// there.

const (
	// mergeGap joins differing bytes this close into one region.
	mergeGap = 64
	// scanBlock is how much of each copy is compared at once.
	scanBlock = 1 << 20
	// maxRegions bounds the regions: past it, the rest of the file is one.
	maxRegions = 4096
)

// copyFile is one copy, open read-only.
type copyFile struct {
	path string
	f    *os.File
	size int64
}

// variant is one of the distinct byte runs the copies hold in a region.
type variant struct {
	copy    int   // the first copy that holds it
	holders []int // every copy that holds it
	end     bool  // the archive ends at the region's start
}

// region is a range where the copies differ, with their variants, the
// most held first.
type region struct {
	off, end int64
	variants []variant
}

// findRegions compares the copies and returns where they differ, and how
// many bytes differ in all.
func findRegions(ctx context.Context, cs []*copyFile, progress func(done, total int64)) ([]region, int64, error) {
	var maxLen int64
	for _, c := range cs {
		maxLen = max(maxLen, c.size)
	}
	bufs := make([][]byte, len(cs))
	for i := range bufs {
		bufs[i] = make([]byte, scanBlock)
	}
	var regs []region
	var differing int64
	add := func(lo, hi int64) {
		differing += hi - lo
		if k := len(regs); k > 0 && lo-regs[k-1].end < mergeGap {
			regs[k-1].end = max(regs[k-1].end, hi)
			return
		}
		regs = append(regs, region{off: lo, end: hi})
	}
	var runs [][2]int64
	for off := int64(0); off < maxLen; off += scanBlock {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if progress != nil {
			progress(off, maxLen)
		}
		if len(regs) >= maxRegions {
			// too many places: the rest is one region
			regs[len(regs)-1].end = maxLen
			break
		}
		n := min(int64(scanBlock), maxLen-off)
		have := make([]int, len(cs))
		ref := -1
		for i, c := range cs {
			want := max(0, min(n, c.size-off))
			got, err := c.f.ReadAt(bufs[i][:want], off)
			if err != nil && err != io.EOF {
				return nil, 0, fmt.Errorf("%s: %w", c.path, err)
			}
			have[i] = got
			if ref < 0 || got > have[ref] {
				ref = i
			}
		}
		runs = runs[:0]
		for i := range cs {
			if i == ref {
				continue
			}
			h := have[i]
			runs = diffRuns(bufs[ref][:h], bufs[i][:h], off, runs)
			if int64(h) < n {
				runs = append(runs, [2]int64{off + int64(h), off + n})
			}
		}
		if int64(have[ref]) < n {
			runs = append(runs, [2]int64{off + int64(have[ref]), off + n})
		}
		sort.Slice(runs, func(a, b int) bool { return runs[a][0] < runs[b][0] })
		for _, r := range runs {
			add(r[0], r[1])
		}
	}
	// count each differing byte once
	differing = 0
	for _, r := range regs {
		differing += r.end - r.off
	}
	return regs, differing, nil
}

// diffRuns appends the runs of a, b (equal lengths, at file offset base)
// where the bytes differ.
func diffRuns(a, b []byte, base int64, runs [][2]int64) [][2]int64 {
	const step = 256
	for i := 0; i < len(a); i += step {
		j := min(i+step, len(a))
		if bytes.Equal(a[i:j], b[i:j]) {
			continue
		}
		for k := i; k < j; k++ {
			if a[k] == b[k] {
				continue
			}
			lo := base + int64(k)
			if n := len(runs); n > 0 && runs[n-1][1] == lo {
				runs[n-1][1] = lo + 1
			} else {
				runs = append(runs, [2]int64{lo, lo + 1})
			}
		}
	}
	return runs
}

// findVariants fills each region's variants: the copies that hold all of
// it, grouped by content (a SHA-256 of their bytes there).
func findVariants(ctx context.Context, cs []*copyFile, regs []region) error {
	var maxLen int64
	for _, c := range cs {
		maxLen = max(maxLen, c.size)
	}
	buf := make([]byte, scanBlock)
	for ri := range regs {
		r := &regs[ri]
		sums := map[[32]byte]int{}
		for i, c := range cs {
			if err := ctx.Err(); err != nil {
				return err
			}
			switch {
			case c.size == r.off && r.end == maxLen:
				r.vote(i, sums, [32]byte{}, true)
				continue
			case c.size < r.end:
				continue // it ends inside the region
			}
			h := sha256.New()
			for o := r.off; o < r.end; o += scanBlock {
				b := buf[:min(int64(scanBlock), r.end-o)]
				if _, err := c.f.ReadAt(b, o); err != nil {
					return fmt.Errorf("%s: %w", c.path, err)
				}
				h.Write(b)
			}
			r.vote(i, sums, [32]byte(h.Sum(nil)), false)
		}
		sort.SliceStable(r.variants, func(a, b int) bool {
			va, vb := r.variants[a], r.variants[b]
			if len(va.holders) != len(vb.holders) {
				return len(va.holders) > len(vb.holders)
			}
			if va.end != vb.end {
				return !va.end
			}
			return va.copy < vb.copy
		})
	}
	return nil
}

// vote adds copy i, whose bytes in the region hash to sum (or which ends at
// its start), to its variant.
func (r *region) vote(i int, sums map[[32]byte]int, sum [32]byte, end bool) {
	if end {
		for k, v := range r.variants {
			if v.end {
				r.variants[k].holders = append(r.variants[k].holders, i)
				return
			}
		}
		r.variants = append(r.variants, variant{copy: i, holders: []int{i}, end: true})
		return
	}
	if k, ok := sums[sum]; ok {
		r.variants[k].holders = append(r.variants[k].holders, i)
		return
	}
	sums[sum] = len(r.variants)
	r.variants = append(r.variants, variant{copy: i, holders: []int{i}})
}
