package rescue

import (
	"bytes"
	"io"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/codec/zstd"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/damage"
)

// tarLimit is what the data of a damaged .tar.zst holds for a tar reader,
// by the decoder's own account of its damage.
type tarLimit struct {
	Members int // regular files and hard links (vzdump's configs aside)
	// Whole: members none of whose header blocks and content bytes is lost
	// or tainted once the loss has its true length (the most a reader that
	// trusts only what the decoder vouches for can restore identical).
	Whole int
	// Content: members whose content bytes are known (their headers may
	// not be).
	Content int
	// SizeKnown: of the members with their content known but not their
	// headers, those whose ustar size field (where the content ends) is
	// known; SizeKnownAsDecoded: the same in the stream as the decoder
	// gives it to a reader that cannot tell the loss's true length (Cond
	// bytes tainted, offsets after the loss moved by the decoder's
	// estimate). What a reader could place exactly without the header's
	// checksum.
	SizeKnown, SizeKnownAsDecoded int
}

// zstdLimit measures the limit of the damaged stream bad whose original
// is good: it decodes bad with its loss of unknown length resized to the
// true length (the clean stream's length says it), and counts the members
// of the clean stream whose bytes lie outside the spans then reported
// (Cond bytes are right: the length is the true one). ok is false when
// the stream has more than one such loss, or the decoder cannot resize it.
func zstdLimit(t *testing.T, good, bad []byte) (lim tarLimit, ok bool) {
	t.Helper()
	clean, _, _ := decodeAll(t, good, nil)
	x, err := ctar.Scan(codec.Plain(bytes.NewReader(clean)), ctar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, spans, _ := decodeAll(t, bad, nil)
	var asDecoded damage.Map
	for _, s := range spans {
		asDecoded.Add(s.Off, s.Len, damage.Tainted)
	}
	var sized *codec.Span
	for _, s := range spans {
		if !s.Resync {
			continue
		}
		if sized != nil {
			return lim, false
		}
		s.Len += int64(len(clean) - len(first))
		sized = &s
	}
	out, spans, resized := decodeAll(t, bad, sized)
	if !resized || len(out) != len(clean) {
		return lim, false
	}
	var dm damage.Map
	for _, s := range spans {
		if !s.Cond || s.State != damage.Tainted {
			dm.Add(s.Off, s.Len, damage.Tainted)
		}
	}
	pos := int64(0)
	for _, r := range append(dm.Overlaps(0, int64(len(out))), damage.Range{Off: int64(len(out))}) {
		if !bytes.Equal(out[pos:r.Off], clean[pos:r.Off]) {
			t.Fatalf("the decoder's bytes in [%d, %d) differ outside its damage", pos, r.Off)
		}
		pos = r.Off + r.Len
	}
	for _, m := range x.Members {
		if m.Config || m.Type != ctar.TypeReg && m.Type != ctar.TypeLink {
			continue
		}
		lim.Members++
		known := true
		for _, e := range m.Data() {
			known = known && !dm.Any(e.Physical, e.Length, damage.Tainted)
		}
		if known {
			lim.Content++
			if !dm.Any(m.HeaderOff, m.HeaderEnd-m.HeaderOff, damage.Tainted) {
				lim.Whole++
			} else if size := m.HeaderEnd - ctar.BlockSize + 124; !m.Sparse {
				if !dm.Any(size, 12, damage.Tainted) {
					lim.SizeKnown++
				}
				// offsets after the loss as decoded
				shift := int64(0)
				if m.HeaderOff >= sized.End() {
					shift = int64(len(first) - len(clean))
				}
				if m.HeaderOff >= sized.End() || m.HeaderEnd <= sized.Off {
					if !asDecoded.Any(size+shift, 12, damage.Tainted) {
						lim.SizeKnownAsDecoded++
					}
				}
			}
		}
	}
	return lim, true
}

// decodeAll decodes a zstd stream with the salvaging reader and returns
// its output and spans; with sized, it resizes that loss as soon as it is
// reported (resized says whether it did).
func decodeAll(t *testing.T, b []byte, sized *codec.Span) (out []byte, spans []codec.Span, resized bool) {
	t.Helper()
	r, err := zstd.NewReader(bytes.NewReader(b), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if sized != nil && !resized {
			if i := spanAt(r.Spans(), sized.Off); i >= 0 {
				if r.(codec.Resizer).Resize(sized.Off, sized.Len) != nil {
					return out, r.Spans(), false
				}
				out, resized = out[:min(int64(len(out)), sized.Off)], true
				continue
			}
		}
		if err == io.EOF {
			return out, r.Spans(), resized
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// spanAt returns the index of the Resync span at off, or -1.
func spanAt(spans []codec.Span, off int64) int {
	for i, s := range spans {
		if s.Resync && s.Off == off {
			return i
		}
	}
	return -1
}
