package main

import (
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"500G": 500 << 30, "1TiB": 1 << 40, "64m": 64 << 20, "4096": 4096, "10KB": 10 << 10} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d %v", in, b, err)
		}
	}
	for _, in := range []string{"", "-1", "0", "G", "1X", "99999999999P"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
}

func TestXattrsFlag(t *testing.T) {
	code, _, stderr := vz("rescue", "--xattrs", "some", "x.vma", "-o", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "safe, all or none") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
