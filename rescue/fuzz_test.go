package rescue

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/vma"
)

// fuzzMaxDisks bounds the disks a fuzzed archive may claim: the rescue
// reads what its volumes cover, and a fuzzer has no time for terabytes of
// zeros.
const fuzzMaxDisks = 64 << 20

// FuzzRescue runs the whole rescue on fuzzed archives (uncompressed VMA):
// archive → volumes → ext4 → copy, end to end. Whatever the bytes, no
// panic, nothing written beside the output directory, and an account.
func FuzzRescue(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := vma.ParseHeader(b); err == nil {
			var size int64
			for _, d := range h.Devices {
				size += d.Size
			}
			if size > fuzzMaxDisks {
				return
			}
		}
		dir := t.TempDir()
		arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
		if err := os.WriteFile(arc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		rep, err := Run(arc, out, Options{Owners: true})
		if ents, _ := os.ReadDir(dir); len(ents) > 2 {
			t.Fatalf("wrote beside the output: %v", ents)
		}
		if err != nil {
			return
		}
		var md bytes.Buffer
		WriteMarkdown(&md, rep)
		if !strings.Contains(md.String(), rep.Summary()) {
			t.Fatal("report.md lacks the summary")
		}
		for _, v := range rep.Volumes {
			if v.Dir != "" && !strings.HasPrefix(v.Dir, "files"+string(filepath.Separator)) {
				t.Fatalf("volume %s copied to %s", v.ID, v.Dir)
			}
		}
	})
}

// TestWriteFuzzSeeds writes FuzzRescue's seed: a small ext4 made by
// mke2fs -d (a file, a hard link, a symlink out of the guest), whole-disk
// and behind a GPT (sgdisk), in raw VMA archives. It runs only with
// VZSALVAGE_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VZSALVAGE_WRITE_SEEDS") != "1" {
		t.Skip("set VZSALVAGE_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.Link(filepath.Join(src, "etc", "passwd"), filepath.Join(src, "etc", "passwd.hard"))
	os.Symlink("/etc/shadow", filepath.Join(src, "shadow"))
	os.WriteFile(filepath.Join(src, "hello"), []byte("hello\n"), 0o644)
	for _, p := range []string{"etc/passwd", "hello", "etc", "."} {
		os.Chtimes(filepath.Join(src, p), time.Unix(1700000000, 0), time.Unix(1700000000, 0))
	}
	mkfs := []string{"-q", "-F", "-t", "ext4", "-b", "1024", "-N", "16", "-O", "^has_journal,^resize_inode",
		"-U", "0b7cf5c2-58b4-4d1e-a1b2-0c5e4a3f2d11", "-E", "hash_seed=0b7cf5c2-58b4-4d1e-a1b2-0c5e4a3f2d11", "-d", src}
	whole := filepath.Join(tmp, "whole.raw")
	os.WriteFile(whole, nil, 0o644)
	os.Truncate(whole, 256<<10)
	testutil.Run(t, "mke2fs", append(mkfs, whole)...)
	gpt := filepath.Join(tmp, "gpt.raw")
	os.WriteFile(gpt, nil, 0o644)
	os.Truncate(gpt, 512<<10)
	testutil.Run(t, "sgdisk", "-a", "8", "-n", "1:40:+256K", "-U", "R", gpt)
	testutil.Run(t, "mke2fs", append(mkfs, "-E", "offset=20480", gpt, "256k")...)

	dir := filepath.Join("testdata", "fuzz", "FuzzRescue")
	os.MkdirAll(dir, 0o755)
	for name, img := range map[string]string{"ext4-whole-disk": whole, "ext4-gpt": gpt} {
		var b bytes.Buffer
		if _, err := testimg.WriteVMA(&b, []testimg.Disk{{Name: "drive-scsi0", Path: img}}, nil, 1); err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b.Bytes())
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
