package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRepairFlip: repair without a sidecar or copies finds a flipped bit
// that the zstd decoder detects in a real archive and writes the original
// bit for bit to -o (exit 0, "repaired at offset X, bit B") or over the
// archive with --in-place; a flip the
// decoder does not detect is out of scope: exit 1, not repaired, the reason
// said (also in --json). verify points to repair when a zstd block fails.
func TestRepairFlip(t *testing.T) {
	dir := t.TempDir()
	arc := smallArchive(t, dir)
	orig, _ := os.ReadFile(arc)
	if code, out, _ := vz("repair", arc); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("intact archive: exit %d\n%s", code, out)
	}
	dmg := filepath.Join(dir, "dmg.vma.zst")
	fixed := filepath.Join(dir, "fixed.vma.zst")
	jsonChecked := false
	for k := 0; k < 400; k++ {
		p, bit := 4096+k*(len(orig)-8192)/400, k%8
		b := bytes.Clone(orig)
		b[p] ^= 1 << bit
		os.WriteFile(dmg, b, 0o644)
		code, out, errs := vz("repair", dmg, "-o", fixed, "--flip-budget", "30s")
		if strings.Contains(out, "does not detect") || strings.Contains(out, "chain of block headers") {
			if _, err := os.Stat(fixed); code != 1 || err == nil {
				t.Fatalf("not repaired: exit %d, output written: %v\n%s", code, err == nil, out)
			}
			if !jsonChecked {
				code, out, _ := vz("repair", "--json", dmg)
				var js struct {
					Why     string
					Repairs []any
				}
				if err := json.Unmarshal([]byte(out), &js); err != nil || code != 1 || js.Why == "" || len(js.Repairs) != 0 {
					t.Fatalf("repair --json: exit %d, %v\n%s", code, err, out)
				}
				jsonChecked = true
			}
			continue
		}
		t.Logf("%s", out)
		if _, vout, _ := vz("verify", "-q", dmg); !strings.Contains(vout, "if a bit flipped: vzsalvage repair "+dmg+" -o FIXED") {
			t.Errorf("verify does not point to repair:\n%s", vout)
		}
		got, _ := os.ReadFile(fixed)
		want := "repaired at offset " + strconv.Itoa(p) + ", bit " + strconv.Itoa(bit)
		if code != 0 || !strings.Contains(out, want) || !bytes.Equal(got, orig) {
			t.Fatalf("flip at %d bit %d: exit %d, identical %v, lacks %q\n%s%s", p, bit, code, bytes.Equal(got, orig), want, out, errs)
		}
		if code, out, _ := vz("repair", "-q", "--in-place", dmg); code != 0 {
			t.Fatalf("--in-place: exit %d\n%s", code, out)
		}
		if got, _ := os.ReadFile(dmg); !bytes.Equal(got, orig) {
			t.Fatal("--in-place: the archive is not the original")
		}
		return
	}
	t.Fatal("no detected flip among 400 positions")
}
