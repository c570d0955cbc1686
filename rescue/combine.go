package rescue

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/report"
)

// clusterSize is the unit in which generations are compared and combined:
// VMA's cluster, the unit of its damage maps.
const clusterSize = 65536

// genDevice is one generation's image of a device.
type genDevice struct {
	Archive  string
	Path     string
	Damage   *damage.Map
	Checksum codec.Checksum // the archive's stream checksum state
	// Copy: a copy of the newest backup (the same VMA UUID), not another
	// night: where both hold a cluster clean, they must agree.
	Copy bool
}

// combined is the outcome of combining one device.
type combined struct {
	Damage    *damage.Map
	Sources   []report.Source
	Filled    *damage.Map // ranges whose bytes came from an older generation
	Confirmed int64       // tainted bytes confirmed by an older generation
	Suspects  []report.Suspect
}

// maxSuspects bounds the suspects listed per device.
const maxSuspects = 1000

// combineDevice improves dst (the newest generation, written in place)
// with older generations (newest first). A damaged cluster of dst is:
//   - confirmed, when dst's bytes are merely tainted and an older
//     generation has the same cluster clean with the same bytes (a copy of
//     the same backup only when its own checksum matched): it leaves the
//     damage map;
//   - filled, when an older generation has it clean and agrees with every
//     byte dst knows in it (a cluster that changed between the nights
//     would mix two states of the data): its bytes are copied in, the
//     range stays in the damage map (it holds another night's content)
//     and is listed in Sources with the count of known bytes that agreed.
//
// Clusters in donated (ranges a second decoding already took from another
// night, or nil) are left as they are.
//
// When some generation's stream checksum failed without a located cause,
// clusters clean in three or more generations are compared, and one that
// differs from two agreeing others is reported as a suspect.
func combineDevice(name string, size int64, dst genDevice, older []genDevice, donated *damage.Map) (*combined, error) {
	out := &combined{Damage: &damage.Map{}, Filled: &damage.Map{}}
	f, err := os.OpenFile(dst.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	olds := make([]*os.File, len(older))
	for i, g := range older {
		if olds[i], err = os.Open(g.Path); err != nil {
			return nil, err
		}
		defer olds[i].Close()
	}
	cur := make([]byte, clusterSize)
	alt := make([]byte, clusterSize)
	if dst.Checksum != codec.ChecksumOK {
		dis, err := disagree(name, size, dst, f, older, olds, cur, alt)
		if err != nil {
			return nil, err
		}
		if !dis.Empty() {
			m := &damage.Map{}
			m.Merge(dst.Damage)
			m.Merge(dis)
			dst.Damage = m
			for _, r := range dis.Ranges() {
				if len(out.Suspects) < maxSuspects {
					out.Suspects = append(out.Suspects, report.Suspect{Device: name, Offset: r.Off, Length: r.Len, Archive: dst.Archive,
						Reason: "a copy of this backup holds other bytes there and the checksum failed: one of them is wrong (listed as damaged)"})
				}
			}
		}
	}
	agreeA, agreeB := make([]byte, clusterSize), make([]byte, clusterSize)
	// Each damaged cluster once, in order, so that the new map is built by
	// appending.
	next := int64(0)
	for _, r := range dst.Damage.Ranges() {
		for off := max(r.Off/clusterSize*clusterSize, next); off < r.End(); off += clusterSize {
			next = off + clusterSize
			n := min(int64(clusterSize), size-off)
			st := worstIn(dst.Damage, off, n)
			if donated.Any(off, n, damage.Tainted) {
				for _, p := range dst.Damage.Overlaps(off, n) {
					out.Damage.Add(p.Off, p.Len, p.State)
				}
				continue
			}
			if err := readFull(f, cur[:n], off); err != nil {
				return nil, err
			}
			fill := -1
			confirmed := false
			var agreed int64
			for i, g := range older {
				if g.Damage.Any(off, n, damage.Tainted) {
					continue
				}
				if err := readFull(olds[i], alt[:n], off); err != nil {
					return nil, err
				}
				// A copy of the newest whose own checksum fails may be
				// where the newest's bytes came from (a merge): its
				// agreement proves nothing.
				independent := !g.Copy || g.Checksum == codec.ChecksumOK
				if st == damage.Tainted && independent && bytes.Equal(cur[:n], alt[:n]) {
					confirmed = true
					fill = i
					break
				}
				ok, same, err := agreeKnown(f, dst.Damage, olds[i], g.Damage, off, n, agreeA, agreeB)
				if err != nil {
					return nil, err
				}
				if fill < 0 && ok {
					fill, agreed = i, same
				}
			}
			switch {
			case confirmed:
				out.Confirmed += n
				out.Sources = appendSource(out.Sources, report.Source{Offset: off, Length: n, Archive: older[fill].Archive, Kind: report.Confirmed})
			case fill >= 0:
				if err := readFull(olds[fill], alt[:n], off); err != nil {
					return nil, err
				}
				if _, err := f.WriteAt(alt[:n], off); err != nil {
					return nil, err
				}
				out.Damage.Add(off, n, damage.Tainted)
				out.Filled.Add(off, n, damage.Tainted)
				out.Sources = appendSource(out.Sources, report.Source{Offset: off, Length: n, Archive: older[fill].Archive, Kind: report.Filled, KnownAgreed: agreed})
			default:
				for _, p := range dst.Damage.Overlaps(off, n) {
					out.Damage.Add(p.Off, p.Len, p.State)
				}
			}
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	all := append([]genDevice{dst}, older...)
	files := append([]*os.File{f}, olds...)
	if len(all) >= 3 && anyMismatch(all) {
		s, err := vote(name, size, all, files)
		if err != nil {
			return nil, err
		}
		out.Suspects = s
	}
	return out, nil
}

// worstIn returns the worst state within [off, off+n) of m.
func worstIn(m *damage.Map, off, n int64) damage.State {
	st := damage.OK
	for _, r := range m.Overlaps(off, n) {
		st = max(st, r.State)
	}
	return st
}

// appendSource adds a range, merging it with the previous one when they
// touch and agree.
func appendSource(s []report.Source, r report.Source) []report.Source {
	if k := len(s); k > 0 && s[k-1].Archive == r.Archive && s[k-1].Kind == r.Kind && s[k-1].Offset+s[k-1].Length == r.Offset {
		s[k-1].Length += r.Length
		s[k-1].KnownAgreed += r.KnownAgreed
		return s
	}
	return append(s, r)
}

func anyMismatch(gs []genDevice) bool {
	for _, g := range gs {
		if g.Checksum == codec.ChecksumMismatch {
			return true
		}
	}
	return false
}

// vote compares clusters that three or more generations hold clean and
// reports, for generations whose checksum failed, clusters that differ from
// two agreeing others.
func vote(name string, size int64, gs []genDevice, files []*os.File) ([]report.Suspect, error) {
	var out []report.Suspect
	buf := make([]byte, clusterSize)
	sums := make([][32]byte, len(gs))
	clean := make([]bool, len(gs))
	for off := int64(0); off < size; off += clusterSize {
		n := min(int64(clusterSize), size-off)
		k := 0
		for i, g := range gs {
			clean[i] = !g.Damage.Any(off, n, damage.Tainted)
			if !clean[i] {
				continue
			}
			k++
			if err := readFull(files[i], buf[:n], off); err != nil {
				return nil, err
			}
			sums[i] = sha256.Sum256(buf[:n])
		}
		if k < 3 {
			continue
		}
		for i, g := range gs {
			if !clean[i] || g.Checksum != codec.ChecksumMismatch {
				continue
			}
			var agree []string
			for j := range gs {
				if j != i && clean[j] && sums[j] != sums[i] {
					for l := j + 1; l < len(gs); l++ {
						if l != i && clean[l] && sums[l] == sums[j] {
							agree = []string{gs[j].Archive, gs[l].Archive}
							break
						}
					}
				}
				if agree != nil {
					break
				}
			}
			if agree == nil {
				continue
			}
			reason := "differs from two generations that agree; its archive's checksum failed"
			if i == 0 {
				reason += " (or the data changed that night)"
			}
			if len(out) < maxSuspects {
				out = append(out, report.Suspect{Device: name, Offset: off, Length: n, Archive: g.Archive, Agree: agree, Reason: reason})
			}
		}
	}
	return out, nil
}

func readFull(f *os.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if err == io.EOF && n == len(b) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return nil
}

// disagree returns the clusters that dst and a copy of it (an older
// generation with Copy set) both hold clean with different bytes: silent
// damage in one of them, which only a failed checksum said was somewhere.
func disagree(name string, size int64, dst genDevice, f *os.File, older []genDevice, olds []*os.File, a, b []byte) (*damage.Map, error) {
	out := &damage.Map{}
	for i, g := range older {
		if !g.Copy {
			continue
		}
		for off := int64(0); off < size; off += clusterSize {
			n := min(int64(clusterSize), size-off)
			if dst.Damage.Any(off, n, damage.Tainted) || g.Damage.Any(off, n, damage.Tainted) || out.Any(off, n, damage.Tainted) {
				continue
			}
			if err := readFull(f, a[:n], off); err != nil {
				return nil, err
			}
			if err := readFull(olds[i], b[:n], off); err != nil {
				return nil, err
			}
			if !bytes.Equal(a[:n], b[:n]) {
				out.Add(off, n, damage.Tainted)
			}
		}
	}
	return out, nil
}
