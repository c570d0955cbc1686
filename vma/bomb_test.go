package vma

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
)

// bombStream plays a decoder's output: prefix, then zeros up to n bytes in
// all (a zstd bomb: blocks that repeat one byte), counting what was read.
type bombStream struct {
	prefix []byte
	n, pos int64
	spans  []codec.Span
}

func (b *bombStream) Read(p []byte) (int, error) {
	if b.pos >= b.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), b.n-b.pos))
	clear(p[:k])
	if b.pos < int64(len(b.prefix)) {
		copy(p[:k], b.prefix[b.pos:])
	}
	b.pos += int64(k)
	return k, nil
}

func (b *bombStream) Spans() []codec.Span        { return b.spans }
func (b *bombStream) Problems() []damage.Problem { return nil }
func (b *bombStream) Checksum() codec.Checksum   { return codec.ChecksumUnknown }

func bombHeader(t *testing.T) (*Header, []byte) {
	h := &Header{Ctime: time.Unix(1765767603, 0), Devices: []Device{{ID: 1, Name: "drive-scsi0", Size: 16 << 20}}}
	h.UUID[3] = 9
	b, err := MarshalHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	h.Size = len(b)
	return h, b
}

// TestBombStopped: a valid header for a 16 MiB disk followed by 64 GiB of
// one repeated byte is read only as far as StreamLimit, and reported.
func TestBombStopped(t *testing.T) {
	h, hdr := bombHeader(t)
	limit := StreamLimit(h)
	if limit > 128<<20 {
		t.Fatalf("limit %d for a 16 MiB disk", limit)
	}
	for _, salvage := range []bool{true, false} {
		src := &bombStream{prefix: hdr, n: 64 << 30}
		r, err := NewReader(src, Options{Salvage: salvage})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = r.Next()
		}
		if src.pos > limit+2<<20 {
			t.Errorf("salvage %v: read %d bytes, the limit is %d", salvage, src.pos, limit)
		}
		if !salvage {
			if err == io.EOF {
				t.Errorf("strict: no error")
			}
			continue
		}
		res := r.Result()
		found := false
		for _, p := range res.Problems {
			found = found || strings.Contains(p.Message, "decompression bomb")
		}
		if !res.Bomb || !found || res.Devices[0].Clusters.Lost != 256 {
			t.Errorf("bomb %v, problems %v, clusters %+v", res.Bomb, res.Problems, res.Devices[0].Clusters)
		}
	}
}

// TestBombHeaderless: with the header lost (a damaged first frame), the
// search for an extent header in 64 GiB of zeros stops after bombSlack.
func TestBombHeaderless(t *testing.T) {
	_, hdr := bombHeader(t)
	src := &bombStream{prefix: make([]byte, len(hdr)), n: 64 << 30,
		spans: []codec.Span{{Off: 0, Len: int64(len(hdr)), State: damage.Lost}}}
	_, err := NewReader(src, Options{Salvage: true})
	if !errors.Is(err, ErrNotVMA) {
		t.Fatalf("err %v", err)
	}
	if src.pos > bombSlack+4<<20 {
		t.Errorf("read %d bytes looking for an extent header", src.pos)
	}
}
