package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepairCopies: repair --copy without a sidecar makes the original
// from two copies damaged at other places (exit 0), and says where the
// damage overlaps and what to run next when it does (exit 1).
func TestRepairCopies(t *testing.T) {
	dir := t.TempDir()
	arc := smallArchive(t, dir)
	orig, _ := os.ReadFile(arc)
	hit := func(name string, at ...int) string {
		b := append([]byte(nil), orig...)
		for _, p := range at {
			for i := p; i < p+65536; i++ {
				b[i] = byte(i*13 + p)
			}
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	a := hit("a.vma.zst", len(orig)/4)
	b := hit("b.vma.zst", len(orig)*3/4)
	fixed := filepath.Join(dir, "fixed.vma.zst")
	code, out, errs := vz("repair", "-q", a, "--copy", b, "-o", fixed)
	got, _ := os.ReadFile(fixed)
	if code != 0 || string(got) != string(orig) || !strings.Contains(out, "bit for bit the original") {
		t.Fatalf("repair --copy: exit %d, identical %v\n%s%s", code, string(got) == string(orig), out, errs)
	}
	t.Logf("%s", out)
	c := hit("c.vma.zst", len(orig)/4+32768)
	code, out, _ = vz("repair", "-q", a, "--copy", c)
	t.Logf("%s", out)
	if code != 1 || !strings.Contains(out, "overlaps") || !strings.Contains(out, "next: vzsalvage rescue "+a+" --also "+c) {
		t.Fatalf("overlapping copies: exit %d\n%s", code, out)
	}
}
