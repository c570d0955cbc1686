//go:build linux

package fat

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// buildTree writes a deterministic tree FAT can hold: long and Unicode
// names, deep directories, a directory of many clusters, sizes around
// cluster boundaries, a file of a few MiB; times on even seconds (FAT's
// resolution).
func buildTree(t testing.TB, root string, many int, big int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(21, 22))
	write := func(p string, n int) {
		t.Helper()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.TXT", 100)
	write("a long file name with spaces.text", 3000)
	write("Ünïcödé – naïve café.txt", 1234)
	write("MixedCase.Conf", 10)
	write("empty", 0)
	for _, n := range []int{1, 511, 512, 513, 2047, 2048, 2049, 4096, 65537} {
		write(fmt.Sprintf("sizes/s%d.bin", n), n)
	}
	if big > 0 {
		write("big.bin", big)
	}
	d := "deep"
	for i := range 12 {
		d = filepath.Join(d, fmt.Sprintf("level %02d", i))
	}
	write(filepath.Join(d, "bottom.txt"), 11)
	for i := range many {
		write(fmt.Sprintf("many/entry number %04d with a long name.dat", i), rng.IntN(300))
	}
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1600000000, 0)
	filepath.WalkDir(root, func(p string, _ iofs.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			os.Chtimes(p, ts, ts.Add(time.Duration(2*len(rel))*time.Second))
		}
		return nil
	})
}

var fatOpts = fstest.Options{MtimeGranularity: 2 * time.Second, NoOwners: true, NoModes: true,
	NoSymlinks: true, NoHardLinks: true, NoXattrs: true}

// runEnv runs a tool with TZ=UTC (FAT keeps local time) and mtools' checks
// off; it fails the test on error.
func runEnv(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, name), args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errb.Bytes())
	}
	return out.Bytes()
}

// mkvfat makes a FAT image of kib KiB with mkfs.vfat (extra options) and
// copies src into it with mcopy -s -m.
func mkvfat(t testing.TB, src, img string, kib int, extra ...string) {
	t.Helper()
	os.Remove(img)
	runEnv(t, "mkfs.vfat", append(append([]string{"-C"}, extra...), img, fmt.Sprint(kib))...)
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-m", "-Q", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	runEnv(t, "mcopy", append(args, "::/")...)
}

func openImage(t testing.TB, img string, opt Options) *FS {
	t.Helper()
	return fstest.OpenImage(t, img, func(r io.ReaderAt, size int64) (*FS, error) { return Open(r, size, opt) })
}

// TestVFAT reads FAT12, FAT16 and FAT32 images filled by mcopy.
func TestVFAT(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, 300, 1<<20)
	for _, c := range []struct {
		name string
		kib  int
		args []string
	}{
		{"fat12", 8 << 10, []string{"-F", "12", "-n", "LABF12"}},
		{"fat16", 16 << 10, []string{"-F", "16", "-n", "LABF16"}},
		{"fat32", 40 << 10, []string{"-F", "32", "-n", "LABF32", "-s", "1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkvfat(t, src, img, c.kib, c.args...)
			f := openImage(t, img, Options{})
			if i := f.Info(); i.Label != c.args[3] || i.Type != "vfat" || f.g.bits != map[string]int{"fat12": 12, "fat16": 16, "fat32": 32}[c.name] {
				t.Errorf("info %+v, FAT%d", i, f.g.bits)
			}
			opt := fatOpts
			opt.SkipTestFS = true // TestConformance runs testing/fstest
			fstest.Check(t, f, src, opt)
		})
	}
}

// TestConformance holds the FAT reader to the contract every filesystem
// reader passes (fs/fstest), testing/fstest included, on a clean FAT16
// image and after garbage over its directories.
func TestConformance(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, 40, 0)
	img := filepath.Join(t.TempDir(), "img")
	mkvfat(t, src, img, 16<<10, "-F", "16")
	f := openImage(t, img, Options{})
	fstest.Check(t, f, src, fatOpts)
	exts, _, _, _ := f.dirContent(0)
	dmg := fstest.Garbage(t, img, exts[0].Physical+512, 1024, 9)
	c := fstest.CheckDamaged(t, openImage(t, img, Options{Damage: dmg}), dmg, src)
	t.Logf("%+v", c)
	if c.Intact+c.Damaged+c.Missing != c.Files {
		t.Errorf("counts %+v do not add up", c)
	}
}

// TestReadOnly: the read-only attribute (mattrib +r) gives mode 0444.
func TestReadOnly(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "ro.txt"), []byte("read only"), 0o644)
	os.WriteFile(filepath.Join(src, "rw.txt"), []byte("read write"), 0o644)
	img := filepath.Join(t.TempDir(), "img")
	mkvfat(t, src, img, 1440)
	runEnv(t, "mattrib", "-i", img, "+r", "::/ro.txt")
	f := openImage(t, img, Options{})
	for p, want := range map[string]iofs.FileMode{"/ro.txt": 0o444, "/rw.txt": 0o644} {
		n, err := fs.Lookup(f, p)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := f.Stat(n); err != nil || st.Mode != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode, err, want)
		}
	}
}

// TestBackupBootSector: a FAT32 whose boot sector is destroyed is read
// through its backup (sector 6).
func TestBackupBootSector(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, 20, 0)
	img := filepath.Join(t.TempDir(), "img")
	mkvfat(t, src, img, 40<<10, "-F", "32")
	dmg := fstest.Garbage(t, img, 0, 512, 3)
	f := openImage(t, img, Options{Damage: dmg})
	if p := f.Info().Problems; len(p) == 0 || !strings.Contains(strings.Join(p, " "), "backup boot sector") {
		t.Errorf("problems %q", p)
	}
	c := fstest.CheckDamaged(t, f, dmg, src)
	if c.Intact != c.Files {
		t.Errorf("%+v: every file should be intact", c)
	}
}

// TestSecondFAT: where the first FAT is destroyed, chains come from the
// second; where the copies disagree, Info says so.
func TestSecondFAT(t *testing.T) {
	src := t.TempDir()
	buildTree(t, src, 100, 1<<20)
	img := filepath.Join(t.TempDir(), "img")
	mkvfat(t, src, img, 40<<10, "-F", "32", "-s", "1")
	g := openImage(t, img, Options{}).g
	// garbage over the whole first FAT: the damage map says so
	dmg := fstest.Garbage(t, img, g.fatOff, min(g.fatLen, 64<<10), 4)
	f := openImage(t, img, Options{Damage: dmg})
	if p := f.Info().Problems; len(p) == 0 || !strings.Contains(p[0], "FAT copies differ") {
		t.Errorf("problems %q", p)
	}
	c := fstest.CheckDamaged(t, f, dmg, src)
	t.Logf("%+v", c)
	if c.Intact != c.Files {
		t.Errorf("%+v: every file should be intact through the second FAT", c)
	}
	// without a damage map, the copy that makes sense is still chosen
	f = openImage(t, img, Options{})
	// (garbage that happens to look like a chain can still fool it: such
	// a file is reported damaged, as CheckDamaged verifies)
	c = fstest.CheckDamaged(t, f, nil, src)
	t.Logf("without a damage map: %+v", c)
	if c.Identical < c.Files*95/100 {
		t.Errorf("%+v: most files should be read right through the second FAT", c)
	}
}

var makeFixtures = flag.Bool("make-fixtures", false, "rebuild testdata/exfat.img.gz (needs root, a loop device and mount.exfat-fuse)")

// exfatSource is the tree testdata/exfat.img.gz was made from.
func exfatSource(t testing.TB) string {
	src := t.TempDir()
	buildTree(t, src, 120, 64<<10)
	return src
}

// mkexfat makes an exFAT image of mib MiB with mkfs.exfat and copies src
// in through exfat-fuse on a loop device (mtools has no exFAT). It skips
// the test where that is impossible.
func mkexfat(t testing.TB, src, img string, mib int, extra ...string) {
	t.Helper()
	fuse, err := exec.LookPath("mount.exfat-fuse")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("exFAT images are written through exfat-fuse on a loop device: needs root and exfat-fuse")
	}
	f, _ := os.Create(img)
	f.Truncate(int64(mib) << 20)
	f.Close()
	runEnv(t, "mkfs.exfat", append(append([]string{"-L", "LABEXFAT"}, extra...), img)...)
	loop, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("no loop device: %v", err)
	}
	dev := strings.TrimSpace(string(loop))
	defer exec.Command("losetup", "-d", dev).Run()
	mnt := t.TempDir()
	if out, err := exec.Command(fuse, dev, mnt).CombinedOutput(); err != nil {
		t.Skipf("exfat-fuse: %v: %s", err, out)
	}
	cp := exec.Command("cp", "-r", "--preserve=timestamps", src+"/.", mnt)
	out, err := cp.CombinedOutput()
	exec.Command("umount", mnt).Run()
	if err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

// TestMakeExfatFixture rebuilds testdata/exfat.img.gz.
func TestMakeExfatFixture(t *testing.T) {
	if !*makeFixtures {
		t.Skip("run with -make-fixtures to rebuild testdata/exfat.img.gz")
	}
	img := filepath.Join(t.TempDir(), "img")
	mkexfat(t, exfatSource(t), img, 8)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(filepath.Join("testdata", "exfat.img.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exfatFixture unpacks testdata/exfat.img.gz into a file.
func exfatFixture(t testing.TB) string {
	fh, err := os.Open(filepath.Join("testdata", "exfat.img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "exfat.img")
	if err := os.WriteFile(img, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestExFAT reads the pinned exFAT image (mkfs.exfat, files written by
// exfat-fuse), and where possible one written now.
func TestExFAT(t *testing.T) {
	src := exfatSource(t)
	img := exfatFixture(t)
	f := openImage(t, img, Options{})
	if i := f.Info(); i.Type != "exfat" || i.Label != "LABEXFAT" {
		t.Errorf("info %+v", i)
	}
	fstest.Check(t, f, src, fatOpts)

	dmg := fstest.Garbage(t, img, f.g.heap+256<<10, 64<<10, 5)
	c := fstest.CheckDamaged(t, openImage(t, img, Options{Damage: dmg}), dmg, src)
	t.Logf("garbage: %+v", c)

	t.Run("fresh", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "img")
		src := t.TempDir()
		buildTree(t, src, 20, 0)
		mkexfat(t, src, img, 8)
		fstest.Check(t, openImage(t, img, Options{}), src, fatOpts)
	})
}
