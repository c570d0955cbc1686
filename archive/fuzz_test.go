package archive

import (
	"path/filepath"
	"testing"
)

// FuzzParseName feeds file names to ParseName: no panic, and what it
// returns is one of the values the name can say.
func FuzzParseName(f *testing.F) {
	f.Add("vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
	f.Fuzz(func(t *testing.T, path string) {
		n := ParseName(path)
		if n != ParseName(filepath.Base(path)) {
			t.Fatalf("%q: the directory changed the name's meaning", path)
		}
		switch n.Payload {
		case "", "vma", "tar":
		default:
			t.Fatalf("%q: payload %q", path, n.Payload)
		}
		switch n.Ext {
		case "", ".zst", ".gz", ".lzo", ".bz2":
		default:
			t.Fatalf("%q: ext %q", path, n.Ext)
		}
		if n.Guest != "" && (n.VMID < 100 || n.Payload == "") {
			t.Fatalf("%q: %+v", path, n)
		}
		if n.Guest == "" && (n.VMID != 0 || !n.Time.IsZero()) {
			t.Fatalf("%q: %+v without a guest", path, n)
		}
	})
}
