package codec

import (
	"bytes"
	"testing"
)

// FuzzDetect feeds stream starts to Detect: a kind it knows, decided by
// the first bytes only.
func FuzzDetect(f *testing.F) {
	f.Add([]byte("\x28\xb5\x2f\xfd"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k := Detect(b)
		switch k {
		case None, Zstd, Gzip, Lzo:
		default:
			t.Fatalf("kind %q", k)
		}
		if len(b) > 9 && Detect(b[:9]) != k {
			t.Fatalf("%q: more than 9 bytes decided", b)
		}
		if k != None && Detect(append(bytes.Clone(b), 0xff, 0)) != k {
			t.Fatalf("%q: bytes after the magic changed the kind", b)
		}
	})
}
