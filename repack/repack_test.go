package repack

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/rescue"
)

// TestRepackSample rescues the damaged sample, repacks the rescue with each
// compression, and checks the archive with the team's independent checker
// (vmacheck.py) and with our strict verify; its disks extract
// byte-identical to the rescue's, and the config carries the note.
func TestRepackSample(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	checker := filepath.Join(testutil.SharedDir(t), "tools", "vmacheck.py")
	dir := filepath.Join(t.TempDir(), "rescue")
	arc := filepath.Join(testutil.Root(), "sample", "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
	rep, err := rescue.Run(arc, dir, rescue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []codec.Kind{codec.Zstd, codec.Gzip, codec.Lzo, codec.None} {
		t.Run(string(kind), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "vzdump-qemu-100-2025_12_16-09_00_00.vma")
			res, err := Repack(dir, out, Options{Compression: kind, Now: time.Date(2025, 12, 16, 9, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Note, "drive-scsi0: 2.4 MiB in 2 ranges not the original's") ||
				!strings.Contains(res.Note, "scsi1 was not in the salvaged backup") {
				t.Errorf("note: %q", res.Note)
			}
			// the independent checker reads plain VMA: decompress with the real CLIs
			plain := out
			if kind != codec.None {
				tool := map[codec.Kind][]string{codec.Zstd: {"zstd", "-dc"}, codec.Gzip: {"gzip", "-dc"}, codec.Lzo: {"lzop", "-dc"}}[kind]
				b, err := exec.Command(testutil.RequireTool(t, tool[0]), tool[1], out).Output()
				if err != nil {
					t.Fatalf("%s: %v", tool[0], err)
				}
				plain = out + ".plain"
				os.WriteFile(plain, b, 0o644)
			}
			x := t.TempDir()
			if b, err := exec.Command(py, checker, plain, "-x", x).CombinedOutput(); err != nil {
				t.Fatalf("vmacheck.py: %v\n%s", err, b)
			}
			conf, _ := os.ReadFile(filepath.Join(x, "qemu-server.conf"))
			if !bytes.HasPrefix(conf, []byte("#vzsalvage: repacked on 2025-12-16 09:00 from the salvaged backup")) ||
				!bytes.Contains(conf, []byte("scsi1: local-lvm:vm-100-disk-1,size=300M,backup=0\n")) ||
				bytes.Contains(conf, []byte("#qmdump#map:scsi1:")) {
				t.Errorf("config:\n%s", conf)
			}
			v, err := extract.Verify(out, extract.Options{Strict: true})
			if err != nil || !v.Intact() {
				t.Fatalf("strict verify: %v %+v", err, v.Report.Archives)
			}
			for _, d := range rep.Devices {
				a, _ := os.ReadFile(filepath.Join(dir, d.Path))
				b, _ := os.ReadFile(filepath.Join(x, "disk-"+d.Name+".raw"))
				if !bytes.Equal(a, b) {
					t.Errorf("%s: the repacked disk differs from the rescue's", d.Name)
				}
			}
			if kind == codec.Zstd {
				if c := v.Report.Archives[0].Checksum; c != codec.ChecksumOK {
					t.Errorf("checksum %s", c)
				}
			}
		})
	}
}
