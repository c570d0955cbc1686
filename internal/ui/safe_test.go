package ui

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSafe(t *testing.T) {
	for _, c := range []struct{ in, name, text string }{
		{"drive-scsi0", "drive-scsi0", "drive-scsi0"},
		{"a\x1b[2Jb", `a\x1b[2Jb`, `a\x1b[2Jb`},
		{"bell\a", `bell\x07`, `bell\x07`},
		{"two\nlines", `two\nlines`, "two\nlines"},
		{"tab\tx", `tab\tx`, "tab\tx"},
		{"rtl\u202eexe.txt", `rtl\u202eexe.txt`, `rtl\u202eexe.txt`},
		{"c1\u009b31m", `c1\u009b31m`, `c1\u009b31m`},
		{"bad\xffutf8", `bad\xffutf8`, `bad\xffutf8`},
		{`back\slash`, `back\slash`, `back\slash`},
		{"back\\slash\x1b", `back\\slash\x1b`, `back\\slash\x1b`},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"Grüße 日本", "Grüße 日本", "Grüße 日本"},
	} {
		if got := Safe(c.in); got != c.name {
			t.Errorf("Safe(%q) = %q, want %q", c.in, got, c.name)
		}
		if got := SafeText(c.in); got != c.text {
			t.Errorf("SafeText(%q) = %q, want %q", c.in, got, c.text)
		}
	}
}

func TestSafeWriter(t *testing.T) {
	var b bytes.Buffer
	w := SafeWriter{&b}
	w.Write([]byte("ok\n\x1b[31mred\u202e\n"))
	if got, want := b.String(), "ok\n\\u001b[31mred\\u202e\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// JSON stays valid JSON with the same value.
	b.Reset()
	in := map[string]string{"name": "x\x1b\u009b\u202e\x7fy"}
	json.NewEncoder(w).Encode(in)
	var out map[string]string
	if err := json.Unmarshal(b.Bytes(), &out); err != nil || out["name"] != in["name"] {
		t.Errorf("JSON through SafeWriter: %q (%v)", b.String(), err)
	}
}
