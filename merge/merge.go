// Package merge puts an archive back together from several damaged copies
// of it, at the level of its compressed bytes, the way lziprecover's merge
// and ddrescue do: where the copies differ, it chooses among their bytes by
// trial decoding (does the zstd, gzip or lzop stream decode through that
// place, and go on decoding after it?) and finally by the stream's own
// checksum. When no place is damaged in every copy, the result is the
// original archive bit for bit, and the checksum says so.
package merge

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Options control Merge.
type Options struct {
	// Output, if set, receives the merged archive (written under a
	// temporary name and renamed when complete).
	Output string
	// OnlyVerified writes Output only when the merge is verified.
	OnlyVerified bool
	// MaxTrials bounds the trial decodes (0: DefaultMaxTrials). Each is a
	// full decode of the archive.
	MaxTrials int
	// Progress, if set, is called with bytes done and total, per phase
	// (compare, each trial, write).
	Progress func(done, total int64)
	// Context, if set, ends the merge when it is done.
	Context context.Context
}

// DefaultMaxTrials is the trial decodes a merge makes at most.
const DefaultMaxTrials = 16

// ErrNotCopies is returned when the files differ in most of their bytes:
// they are not copies of one archive (another night's backup, or the same
// data compressed anew).
var ErrNotCopies = errors.New("not copies of one archive")

// Result is what Merge found and did.
type Result struct {
	Copies      []string   `json:"copies"`
	Compression codec.Kind `json:"compression"`
	// Size is the merged archive's size.
	Size int64 `json:"size"`
	// Differing counts the bytes in which the copies differ (a shorter
	// copy's missing end included).
	Differing int64 `json:"differing_bytes"`
	// Regions are the places where the copies differ and what was chosen.
	Regions []Region `json:"regions"`
	// Trials counts the trial decodes made; OutOfTrials says they ran out
	// before a choice was verified.
	Trials      int  `json:"trials"`
	OutOfTrials bool `json:"out_of_trials,omitempty"`
	// Checksum is the merged stream's own checksum state, and Verified
	// says it decodes without a problem and its checksum matches: then the
	// merged archive is the original bit for bit.
	Checksum codec.Checksum `json:"checksum"`
	Verified bool           `json:"verified"`
	// Unresolved counts the regions where no copy's bytes decode: every
	// copy is damaged there (the damage overlaps).
	Unresolved int `json:"unresolved"`
	// Shared lists problems found away from every place where the copies
	// differ: damage all copies hold alike.
	Shared []damage.Problem `json:"shared_problems,omitempty"`
	// Output is the merged archive written (empty when none), SHA256 its
	// hash.
	Output string `json:"output,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Region is a place where the copies differ.
type Region struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// Variants counts the different contents the copies hold there.
	Variants int `json:"variants"`
	// From is the index in Copies of the copy whose bytes were taken, or
	// -1 when the archive ends here (a shorter copy's end was taken).
	From int `json:"from"`
	// Other lists the copies whose bytes there differ from those taken
	// (or that lack them): when the merge is verified, the copies damaged
	// there.
	Other []int `json:"other"`
	// How the choice was made: "only" (the copies that hold bytes there
	// agree), "votes" (most copies' bytes, never contradicted), "decoding"
	// (the other choices tried failed to decode), "checksum" (the stream's
	// checksum matched only with it), "unresolved" (no choice decodes).
	How string `json:"how"`
}

// Merge combines the copies at paths (two or more; the first is the
// archive, the rest its copies) and, with opt.Output, writes the result.
// It never refuses copies of one archive: when their damage overlaps, the
// result says where (Unresolved) and the merged archive holds, there, the
// choice with the fewest problems.
func Merge(paths []string, opt Options) (*Result, error) {
	if len(paths) < 2 {
		return nil, errors.New("merge needs two or more copies")
	}
	ctx := opt.Context
	if ctx == nil {
		ctx = context.Background()
	}
	cs := make([]*copyFile, len(paths))
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", p)
		}
		cs[i] = &copyFile{path: p, f: f, size: st.Size()}
	}
	res := &Result{Copies: paths, Compression: detect(cs)}
	regs, differing, err := findRegions(ctx, cs, opt.Progress)
	if err != nil {
		return nil, err
	}
	res.Differing = differing
	var maxLen int64
	for _, c := range cs {
		maxLen = max(maxLen, c.size)
	}
	if differing > maxLen/2 {
		return nil, fmt.Errorf("%w: they differ in %d of %d bytes", ErrNotCopies, differing, maxLen)
	}
	if err := findVariants(ctx, cs, regs); err != nil {
		return nil, err
	}
	m := &merger{ctx: ctx, kind: res.Compression, cs: cs, regs: regs, reach: reaches[res.Compression],
		maxTrials: opt.MaxTrials, progress: opt.Progress}
	if m.maxTrials <= 0 {
		m.maxTrials = DefaultMaxTrials
	}
	m.limit = streamLimit(paths, maxLen)
	m.makeGroups()
	o, err := m.search()
	if err != nil {
		return nil, err
	}
	res.Trials = m.trials
	res.OutOfTrials = m.trials >= m.maxTrials && !o.verified()
	if o != nil {
		res.Checksum, res.Verified = o.checksum, o.verified()
		_, res.Shared = m.blame(o.located)
	}
	choice := m.choice()
	for _, g := range m.groups {
		for _, ri := range g.regs {
			r := regs[ri]
			v := r.variants[choice[ri]]
			rg := Region{Offset: r.off, Length: r.end - r.off, Variants: len(r.variants), From: v.copy, How: g.how}
			if v.end {
				rg.From = -1
			}
			held := map[int]bool{}
			for _, h := range v.holders {
				held[h] = true
			}
			for i := range cs {
				if !held[i] {
					rg.Other = append(rg.Other, i)
				}
			}
			if g.how == HowUnresolved {
				res.Unresolved++
			}
			res.Regions = append(res.Regions, rg)
		}
	}
	v := newView(cs, regs, choice)
	res.Size = v.size
	if opt.Output != "" && (res.Verified || !opt.OnlyVerified) {
		sum, err := v.write(ctx, opt.Output, opt.Progress)
		if err != nil {
			return nil, err
		}
		res.Output, res.SHA256 = opt.Output, sum
	}
	return res, nil
}

// streamLimit bounds the output of a trial decode: what the VMA header of
// one of the copies allows (vma.StreamLimit), or, without one, 1024 times
// the file plus 1 GiB.
func streamLimit(paths []string, size int64) int64 {
	for _, p := range paths {
		if h, err := extract.ReadHead(p); err == nil && h.Header != nil && len(h.Header.Devices) > 0 {
			return vma.StreamLimit(h.Header)
		}
	}
	return 1024*size + 1<<30
}

// detect returns the compression most copies' first bytes name.
func detect(cs []*copyFile) codec.Kind {
	votes := map[codec.Kind]int{}
	best := codec.None
	for _, c := range cs {
		var b [16]byte
		n, _ := c.f.ReadAt(b[:], 0)
		k := codec.Detect(b[:n])
		votes[k]++
		if votes[k] > votes[best] || votes[k] == votes[best] && best == codec.None {
			best = k
		}
	}
	return best
}

// Damaged returns, per copy, the ranges of its file where it differs from
// the merged archive (or lacks its bytes): when the merge is verified,
// exactly where that copy is damaged.
func (r *Result) Damaged() []*damage.Map {
	out := make([]*damage.Map, len(r.Copies))
	for i := range out {
		out[i] = &damage.Map{}
	}
	for _, rg := range r.Regions {
		for _, i := range rg.Other {
			out[i].Add(rg.Offset, rg.Length, damage.Tainted)
		}
	}
	return out
}

// Unverified returns, when the merge is not verified, the regions whose
// choice nothing proved (all but those where the copies that hold bytes
// agree): a decoder told to distrust them (codec.Options.Distrust) reports
// what they decode to as damaged. Nil when verified.
func (r *Result) Unverified() []damage.Range {
	if r.Verified {
		return nil
	}
	var out []damage.Range
	for _, rg := range r.Regions {
		if rg.How != HowOnly {
			out = append(out, damage.Range{Off: rg.Offset, Len: rg.Length, State: damage.Tainted})
		}
	}
	return out
}

// Why says in one sentence why the merge is not verified ("" when it is).
func (r *Result) Why() string {
	switch {
	case r.Verified:
		return ""
	case r.Unresolved > 0:
		for _, rg := range r.Regions {
			if rg.How == HowUnresolved {
				return fmt.Sprintf("the copies' damage overlaps: at %d place(s) (the first at offset %d) no copy's bytes decode", r.Unresolved, rg.Offset)
			}
		}
	case len(r.Shared) > 0:
		return fmt.Sprintf("every copy is damaged alike at offset %d: %s", r.Shared[0].Offset, r.Shared[0].Message)
	case r.OutOfTrials:
		return fmt.Sprintf("no choice verified within %d trial decodes", r.Trials)
	case r.Checksum == codec.ChecksumMismatch:
		return "every choice tried decodes, but the checksum fails: the copies' damage overlaps where only the checksum notices it"
	case r.Checksum == codec.ChecksumAbsent:
		return "the stream has no checksum: the copies' bytes were chosen by votes and decoding, and cannot be verified"
	}
	return "the merged archive could not be checked to its end"
}
