package extract

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/report"
)

// realDisks builds, once per test binary, the disks of a typical VM with
// the real tools: a GPT disk with ext4 /boot and root (sgdisk, mke2fs -d), a
// bare XFS data disk (mkfs.xfs) and an efidisk.
// realZstdArchive archives the real disks with the zstd CLI in a new
// temporary directory: the disks, that directory, the archive's path and
// its bytes.
func realZstdArchive(t *testing.T) (disks []testimg.Disk, dir, arc string, clean []byte) {
	t.Helper()
	disks = realDisks(t)
	dir = t.TempDir()
	arc = testimg.BuildArchive(t, dir, disks, ".zst", 42)
	clean, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	return disks, dir, arc, clean
}

func realDisks(t *testing.T) []testimg.Disk {
	t.Helper()
	shared.once.Do(func() {
		dir := shared.dir
		src := filepath.Join(dir, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		testimg.Tree(t, src, testimg.TreeOptions{Files: 300, Seed: 1, Big: true})
		disks := []testimg.Disk{
			{Name: "drive-efidisk0", Path: filepath.Join(dir, "efi.raw")},
			{Name: "drive-scsi0", Path: filepath.Join(dir, "root.raw")},
			{Name: "drive-scsi1", Path: filepath.Join(dir, "data.raw")},
		}
		testimg.EFIDisk(t, disks[0].Path)
		testimg.GPTExt4(t, disks[1].Path, 64<<20, src)
		testimg.XFS(t, disks[2].Path, 300<<20)
		shared.disks = disks
	})
	if shared.disks == nil {
		t.Fatal("building the test disks failed")
	}
	return shared.disks
}

var shared struct {
	once  sync.Once
	dir   string
	disks []testimg.Disk
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vzsalvage-extract-test")
	if err != nil {
		panic(err)
	}
	shared.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestRoundTripRealImages(t *testing.T) {
	disks := realDisks(t)
	for _, ext := range []string{"", ".zst", ".gz", ".lzo"} {
		t.Run("vma"+ext, func(t *testing.T) {
			dir := t.TempDir()
			arc := testimg.BuildArchive(t, dir, disks, ext, 42)
			out := filepath.Join(dir, "out")
			res, err := Extract(arc, out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Intact() {
				b, _ := json.MarshalIndent(res.Report, "", " ")
				t.Fatalf("not intact: %s", b)
			}
			for _, d := range disks {
				got := testimg.FileSHA256(t, filepath.Join(out, "disk-"+d.Name+".raw"))
				if got != testimg.FileSHA256(t, d.Path) {
					t.Errorf("%s differs", d.Name)
				}
			}
			cfg, err := os.ReadFile(filepath.Join(out, "qemu-server.conf"))
			if err != nil || string(cfg) != testimg.Config {
				t.Errorf("config: %v", err)
			}
			rep, err := report.ReadFile(filepath.Join(out, "damage.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Devices) != 3 || rep.Archives[0].Status != "intact" {
				t.Fatalf("damage.json: %+v", rep)
			}
			for _, d := range rep.Devices {
				if !d.Damage.Empty() || d.Clusters.Lost+d.Clusters.Tainted != 0 {
					t.Errorf("%s: damage %v", d.Name, d.Damage.Ranges())
				}
			}
			if want := map[string]codec.Checksum{"": codec.ChecksumAbsent, ".zst": codec.ChecksumOK, ".gz": codec.ChecksumOK, ".lzo": codec.ChecksumOK}[ext]; rep.Archives[0].Checksum != want {
				t.Errorf("checksum %s, want %s", rep.Archives[0].Checksum, want)
			}
		})
	}
}

// TestWriterOutputPassesVmacheck runs the team's independent strict checker
// on an archive of real images written by our Writer.
func TestWriterOutputPassesVmacheck(t *testing.T) {
	disks := realDisks(t)
	dir := t.TempDir()
	arc := testimg.BuildArchive(t, dir, disks, "", 7)
	cmd := exec.Command(testutil.RequireTool(t, "python3"), filepath.Join(testutil.SharedDir(t), "tools", "vmacheck.py"), arc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vmacheck: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("OK")) {
		t.Fatalf("vmacheck: %s", out)
	}
}
