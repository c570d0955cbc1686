//go:build linux

package ctar

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// testRecord is a Record of an index's hashes.
type testRecord []MemberHash

func (r testRecord) Lookup(h MemberHash) (bool, bool) {
	header := false
	for _, e := range r {
		if e.Header == h.Header {
			header = true
			if e.Data == h.Data {
				return true, true
			}
		}
	}
	return header, false
}

func (r testRecord) Members() int { return len(r) }

// TestRecord: the hashes Scan computes are those of the header blocks and
// content as stored; a record of them proves right the members a decoder
// only suspected, and names one whose content changed silently.
func TestRecord(t *testing.T) {
	dir, src := tree(t, testimg.ContainerOptions{Files: 60, Seed: 24})
	arc := testimg.ContainerArchive(t, src, dir, "", "2025_12_15-03_00_03")
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	scan := func(b []byte, spans []codec.Span) *Index {
		x, err := Scan(&spanReader{Reader: bytes.NewReader(b), spans: spans}, Options{Hash: true})
		if err != nil || len(x.Hashes) != len(x.Members) {
			t.Fatal(err)
		}
		return x
	}
	clean := scan(b, nil)
	var files []*Member // regular files with content, largest first
	for i, m := range clean.Members {
		if xxhash.Sum64(b[m.HeaderOff:m.HeaderEnd]) != clean.Hashes[i].Header {
			t.Errorf("%s: header hash", m.Name)
		}
		if m.Type == TypeReg && !m.Sparse {
			if xxhash.Sum64(b[m.HeaderEnd:m.HeaderEnd+m.Size]) != clean.Hashes[i].Data {
				t.Errorf("%s: content hash", m.Name)
			}
			if m.Size > 2000 && !m.Config {
				files = append(files, m)
			}
		}
	}
	slices.SortFunc(files, func(a, b *Member) int { return cmp.Compare(b.Size, a.Size) })
	rec := testRecord(clean.Hashes)

	// the decoder suspects the first file's content (it is right), and the
	// second's content changed where nothing but the record can tell
	sus, bad := files[0], files[1]
	b2 := bytes.Clone(b)
	b2[bad.HeaderEnd+7] ^= 1
	x := scan(b2, []codec.Span{{Off: sus.HeaderEnd + 100, Len: 300, State: damage.Tainted, MaxLen: -1}})
	if x.MemberDamage(x.Members[slices.Index(clean.Members, sus)]) == nil {
		t.Fatal("the suspected member is not damaged before the record")
	}
	res := x.ApplyRecord(rec)
	if res.Confirmed != 1 || res.Wrong != 1 || res.Missing != 0 {
		t.Errorf("%+v", res)
	}
	for i, m := range x.Members {
		switch d := x.MemberDamage(m); {
		case m.Name == bad.Name && d == nil:
			t.Errorf("%s changed but is not damaged", m.Name)
		case m.Name != bad.Name && d != nil:
			t.Errorf("%s is damaged: %v (%v)", m.Name, d.Ranges(), clean.Hashes[i] == x.Hashes[i])
		}
	}
}
