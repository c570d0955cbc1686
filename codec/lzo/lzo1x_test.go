package lzo

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
)

// blocks splits an lzop file into its blocks (header checked).
func blocks(t testing.TB, f []byte) (lay layout, hs []blockHeader, datas [][]byte) {
	t.Helper()
	h, err := parseFileHeader(f)
	if err != nil || h.checksumBad {
		t.Fatalf("header: %v, checksum bad %v", err, h.checksumBad)
	}
	lay = layoutOf(h.flags)
	p := h.len
	for {
		bh, ok := lay.parseBlockHeader(f[p:])
		if !ok {
			t.Fatal("short block header")
		}
		if bh.dstLen == 0 {
			return
		}
		hs = append(hs, bh)
		datas = append(datas, f[p+bh.len:p+bh.len+bh.srcLen])
		p += bh.len + bh.srcLen
	}
}

// TestDecompress1X decodes every block lzop wrote, at every level, and
// compares it with the original.
func TestDecompress1X(t *testing.T) {
	data := diskData(1 << 20)
	for _, level := range []string{"-1", "-3", "-7", "-9"} {
		lay, hs, datas := blocks(t, testimg.Compress(t, data, "lzop", level))
		off := 0
		for i, h := range hs {
			want := data[off : off+h.dstLen]
			off += h.dstLen
			if h.srcLen == h.dstLen {
				continue // stored
			}
			out, err := Decompress1X(make([]byte, 0, h.dstLen), datas[i])
			if err != nil || !bytes.Equal(out, want) || !lay.verifyData(&h, out) {
				t.Fatalf("%s block %d: %v, equal %v", level, i, err, bytes.Equal(out, want))
			}
			// Not enough room: an error, never a write past cap.
			small := make([]byte, 0, h.dstLen-1)
			if _, err := Decompress1X(small, datas[i]); !errors.Is(err, ErrOutputOverrun) {
				t.Fatalf("%s block %d: short room: %v", level, i, err)
			}
			// Appending after a prefix keeps the prefix and refuses matches into it.
			pre := append(make([]byte, 0, 3+h.dstLen), "abc"...)
			out, err = Decompress1X(pre, datas[i])
			if err != nil || string(out[:3]) != "abc" || !bytes.Equal(out[3:], want) {
				t.Fatalf("%s block %d: with prefix: %v", level, i, err)
			}
		}
		if off != len(data) {
			t.Fatalf("%s: blocks hold %d bytes, want %d", level, off, len(data))
		}
	}
}

func TestDecompress1XErrors(t *testing.T) {
	room := make([]byte, 0, 1024)
	tests := []struct {
		name string
		src  []byte
		out  string
		err  error
	}{
		{"empty stream", []byte{0x11, 0, 0}, "", nil},
		{"no input", nil, "", ErrInputOverrun},
		{"literals then end", []byte{17 + 5, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0}, "hello", nil},
		{"literal run cut", []byte{17 + 5, 'h', 'e'}, "", ErrInputOverrun},
		{"no end marker", []byte{17 + 5, 'h', 'e', 'l', 'l', 'o'}, "hello", ErrInputOverrun},
		{"trailing data", []byte{17 + 5, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0, 9}, "hello", ErrInputNotConsumed},
		// "ab" then an M2 match of length 3 at distance 2 (overlapping): ababa.
		{"overlapping match", []byte{17 + 4, 'a', 'b', 'a', 'b', 0x40 | 1<<2, 0, 0x11, 0, 0}, "abababa", nil},
		{"match before start", []byte{17 + 4, 'a', 'b', 'c', 'd', 0x40 | 7<<2, 1, 0x11, 0, 0}, "abcd", ErrLookbehind},
		{"first byte match", []byte{0x11, 4, 0, 0x11, 0, 0}, "", ErrLookbehind},
		{"long literal run", append(append([]byte{0, 1}, bytes.Repeat([]byte{'x'}, 19)...), 0x11, 0, 0), "xxxxxxxxxxxxxxxxxxx", nil},
		{"long literal run cut", []byte{0, 0, 5, 'x', 'y'}, "", ErrInputOverrun},
		{"output too long", []byte{17 + 4, 'a', 'b', 'c', 'd', 0x20, 0, 0, 0, 0, 4, 0, 0, 0x11, 0, 0}, "abcd", ErrOutputOverrun},
	}
	for _, tt := range tests {
		out, err := Decompress1X(room[:0], tt.src)
		if !errors.Is(err, tt.err) || (tt.out != "" && string(out) != tt.out) {
			t.Errorf("%s: %q, %v; want %q, %v", tt.name, out, err, tt.out, tt.err)
		}
	}
}
