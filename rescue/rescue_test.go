package rescue

import (
	"bytes"
	"crypto/sha256"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// vm is a test VM: its disks and the source tree of its root filesystem.
type vm struct {
	dir   string
	src   string
	disks []testimg.Disk
	root  testimg.Partition
}

// buildVM makes the disks of a typical VM with the real tools: a GPT disk
// with an ext4 root holding thousands of files (sgdisk, mke2fs -d), a bare
// XFS data disk (mkfs.xfs) and an efidisk.
func buildVM(t *testing.T, files int) *vm {
	t.Helper()
	v := &vm{dir: t.TempDir()}
	v.src = filepath.Join(v.dir, "src")
	if err := os.Mkdir(v.src, 0o755); err != nil {
		t.Fatal(err)
	}
	testimg.Tree(t, v.src, testimg.TreeOptions{Files: files, Seed: 3})
	v.disks = []testimg.Disk{
		{Name: "drive-efidisk0", Path: filepath.Join(v.dir, "efi.raw")},
		{Name: "drive-scsi0", Path: filepath.Join(v.dir, "root.raw")},
		{Name: "drive-scsi1", Path: filepath.Join(v.dir, "data.raw")},
	}
	testimg.EFIDisk(t, v.disks[0].Path)
	parts := testimg.GPTExt4(t, v.disks[1].Path, 160<<20, v.src)
	v.root = parts[2]
	testimg.XFS(t, v.disks[2].Path, 300<<20)
	return v
}

// sums returns the sha256 of every regular file under dir, by relative path.
func sums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out["/"+rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// check compares a rescue's root files with the source tree: it returns
// how many are identical, and fails on any file that differs or is missing
// without being listed in damaged_files.
func check(t *testing.T, rep *Report, dir string, want map[string][32]byte) (same int) {
	t.Helper()
	listed := map[string]fs.State{}
	for _, f := range rep.DamagedFiles {
		if f.Volume == "drive-scsi0-p3" {
			listed[f.Path] = f.State
		}
	}
	got := sums(t, filepath.Join(dir, "files", "drive-scsi0-p3"))
	for p, h := range want {
		g, ok := got[p]
		if ok && g == h {
			same++
			continue
		}
		if _, in := listed[p]; in {
			continue
		}
		// a file that could not be found by its name is accounted for when a
		// directory on its path is listed as damaged (its listing is
		// incomplete; the file may be under /lost+found)
		if !ok && listedAncestor(p, listed) {
			continue
		}
		t.Errorf("%s differs from the original (or is missing) but is not listed as damaged", p)
	}
	return same
}

func listedAncestor(p string, listed map[string]fs.State) bool {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		if _, ok := listed[d]; ok {
			return true
		}
	}
	_, ok := listed["/"]
	return ok
}

func TestRescueIntact(t *testing.T) {
	v := buildVM(t, 400)
	arc := testimg.BuildArchive(t, v.dir, v.disks, ".zst", 1)
	out := filepath.Join(v.dir, "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact() {
		t.Fatalf("not intact: %s", rep.Summary())
	}
	want := sums(t, v.src)
	if same := check(t, rep, out, want); same != len(want) {
		t.Fatalf("%d of %d files identical", same, len(want))
	}
	// the volumes: EFI, boot, root partitions and the whole-disk XFS
	ids := []string{}
	for _, vol := range rep.Volumes {
		ids = append(ids, vol.ID+"="+vol.FS)
	}
	if got := strings.Join(ids, " "); !strings.Contains(got, "drive-scsi0-p3=ext4") || !strings.Contains(got, "drive-scsi1=xfs") {
		t.Fatalf("volumes: %s", got)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !bytes.Contains(md, []byte("intact")) {
		t.Fatalf("report.md: %v", err)
	}
}

// TestRescueGarbage is the incident: 64 KiB of garbage at 30 % of a
// .vma.zst made by the zstd CLI from real images. Every file that differs
// must be listed. How many come back depends on where the garbage falls:
// one lost zstd block taints what copies from it (megabytes, in data as
// repetitive as this test tree), and an extent whose header is lost loses
// its 58 clusters; on a small filesystem that is a large share, so the
// floor here is low and scripts/measure-salvage.sh measures at scale.
func TestRescueGarbage(t *testing.T) {
	v := buildVM(t, 3000)
	arc := testimg.BuildArchive(t, v.dir, v.disks, ".zst", 1)
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(30))
	p := len(b) * 3 / 10
	rng.Read(b[p : p+65536])
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(v.dir, "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := sums(t, v.src)
	same := check(t, rep, out, want)
	frac := float64(same) / float64(len(want))
	t.Logf("%s; %d of %d root files identical (%.2f%%), %d listed damaged", rep.Summary(), same, len(want), 100*frac, len(rep.DamagedFiles))
	if frac < 0.5 {
		t.Errorf("only %.2f%% of the root filesystem's files restored identical", 100*frac)
	}
}

// TestRescueGenerations combines three nights of one VM, each damaged in
// another place: everything that did not change between the nights must
// come back identical.
func TestRescueGenerations(t *testing.T) {
	v := buildVM(t, 1500)
	want := sums(t, v.src)
	var arcs []string
	for night := 0; night < 3; night++ {
		if night > 0 {
			// the guest lives on: a new file each night
			changeGuest(t, v, night)
		}
		dir := filepath.Join(v.dir, "night"+strconv.Itoa(night))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		arc := testimg.BuildArchive(t, dir, v.disks, ".zst", int64(night+1))
		b, err := os.ReadFile(arc)
		if err != nil {
			t.Fatal(err)
		}
		p := len(b) * (25 + 20*night) / 100
		rand.New(rand.NewSource(int64(night))).Read(b[p : p+65536])
		if err := os.WriteFile(arc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		arcs = append(arcs, arc)
	}
	// newest first
	out := filepath.Join(v.dir, "rescue")
	rep, err := Run(arcs[2], out, Options{Also: []string{arcs[1], arcs[0]}})
	if err != nil {
		t.Fatal(err)
	}
	got := sums(t, filepath.Join(out, "files", "drive-scsi0-p3"))
	same := 0
	for p, h := range want {
		if strings.HasPrefix(p, "/changed") {
			continue
		}
		if got[p] == h {
			same++
		} else {
			t.Errorf("%s: unchanged between the nights, but not restored identical", p)
		}
	}
	filled := int64(0)
	for _, d := range rep.Devices {
		for _, s := range d.Sources {
			filled += s.Length
		}
	}
	t.Logf("%s; %d unchanged files identical; %d bytes filled or confirmed from older nights", rep.Summary(), same, filled)
	if rd := rep.Archives[0].Redecode; rd != nil {
		filled += rd.DonatedBytes
	}
	if filled == 0 {
		t.Error("nothing was taken from the older backups")
	}
}

// changeGuest changes the root filesystem between two nights with debugfs:
// a new file is written and an existing file's blocks rewritten in place.
func changeGuest(t *testing.T, v *vm, night int) {
	t.Helper()
	img := v.disks[1].Path + "?offset=" + strconv.FormatInt(v.root.Offset, 10)
	f := filepath.Join(v.dir, "new"+strconv.Itoa(night))
	if err := os.WriteFile(f, bytes.Repeat([]byte("night "+strconv.Itoa(night)+"\n"), 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "debugfs", "-w", "-R", "write "+f+" /changed"+strconv.Itoa(night), img)
}

// TestRescueHostileGuest runs a rescue (as the tests run: root) on a guest
// whose root filesystem holds what a hostile guest could plant: symlinks
// to host paths, a device node, a FIFO, setuid and setgid files. Nothing
// may be written outside the output directory, no device node or FIFO
// created, no setuid/setgid bit kept.
func TestRescueHostileGuest(t *testing.T) {
	v := &vm{dir: t.TempDir()}
	v.src = filepath.Join(v.dir, "src")
	os.MkdirAll(filepath.Join(v.src, "bin"), 0o755)
	outside := filepath.Join(v.dir, "host-target")
	os.WriteFile(filepath.Join(v.src, "bin", "su"), []byte("#!/bin/sh\n"), 0o755)
	os.Chmod(filepath.Join(v.src, "bin", "su"), 0o4755|os.ModeSetuid)
	os.WriteFile(filepath.Join(v.src, "bin", "sg"), []byte("#!/bin/sh\n"), 0o755)
	os.Chmod(filepath.Join(v.src, "bin", "sg"), 0o2755|os.ModeSetgid)
	os.Symlink(outside, filepath.Join(v.src, "abs-link"))
	os.Symlink("../../../../../../../../"+outside, filepath.Join(v.src, "rel-link"))
	os.Symlink("/etc/shadow", filepath.Join(v.src, "shadow-link"))
	specials := os.Getuid() == 0
	if specials {
		if err := mknod(filepath.Join(v.src, "disk"), filepath.Join(v.src, "fifo")); err != nil {
			specials = false
		}
	}
	v.disks = []testimg.Disk{{Name: "drive-scsi0", Path: filepath.Join(v.dir, "root.raw")}}
	testimg.GPTExt4(t, v.disks[0].Path, 48<<20, v.src)
	arc := testimg.BuildArchive(t, v.dir, v.disks, ".zst", 1)
	out := filepath.Join(v.dir, "rescue")
	if _, err := Run(arc, out, Options{Owners: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(outside); err == nil {
		t.Fatalf("%s was created outside the output directory", outside)
	}
	root := filepath.Join(out, "files", "drive-scsi0-p3")
	for _, name := range []string{"abs-link", "rel-link", "shadow-link"} {
		st, err := os.Lstat(filepath.Join(root, name))
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: not recreated as a symlink (%v)", name, err)
		}
	}
	for _, name := range []string{"bin/su", "bin/sg"} {
		st, err := os.Stat(filepath.Join(root, name))
		if err != nil || st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("%s: %v, mode %v (setuid/setgid must be dropped)", name, err, st.Mode())
		}
	}
	if specials {
		for _, name := range []string{"disk", "fifo"} {
			if _, err := os.Lstat(filepath.Join(root, name)); err == nil {
				t.Errorf("%s: a device node or FIFO was recreated", name)
			}
		}
	}
}

// TestRescueXFSAndEFI: a VM whose root disk has an EFI system partition
// (FAT16 with files, mkfs.vfat and mcopy) and whose data disk is XFS
// (mkfs.xfs -p): rescue lists both and copies their files.
func TestRescueXFSAndEFI(t *testing.T) {
	dir := t.TempDir()
	rootSrc := filepath.Join(dir, "root-src")
	efiSrc := filepath.Join(dir, "efi-src")
	dataSrc := filepath.Join(dir, "data-src")
	for _, d := range []string{rootSrc, efiSrc, dataSrc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testimg.Tree(t, rootSrc, testimg.TreeOptions{Files: 50, Seed: 4})
	testimg.Tree(t, dataSrc, testimg.TreeOptions{Files: 300, Seed: 5})
	for p, data := range map[string]string{"EFI/BOOT/BOOTX64.EFI": strings.Repeat("MZ efi loader ", 3000), "EFI/debian/grub.cfg": "search.fs_uuid 1234 root\n"} {
		full := filepath.Join(efiSrc, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disks := []testimg.Disk{
		{Name: "drive-scsi0", Path: filepath.Join(dir, "root.raw")},
		{Name: "drive-scsi1", Path: filepath.Join(dir, "data.raw")},
	}
	parts := testimg.GPTExt4(t, disks[0].Path, 64<<20, rootSrc)
	testimg.FATPartition(t, disks[0].Path, parts[0], efiSrc, "-F", "16", "-s", "1")
	testimg.XFSFrom(t, disks[1].Path, 48<<20, dataSrc, "-L", "data")
	arc := testimg.BuildArchive(t, dir, disks, ".zst", 2)
	out := filepath.Join(dir, "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact() {
		t.Fatalf("not intact: %s", rep.Summary())
	}
	fsOf := map[string]string{}
	for _, v := range rep.Volumes {
		fsOf[v.ID] = v.FS
		for _, n := range v.Notes {
			if strings.Contains(n, "reader yet") {
				t.Errorf("%s: %s", v.ID, n)
			}
		}
	}
	if fsOf["drive-scsi0-p1"] != "vfat" || fsOf["drive-scsi1"] != "xfs" {
		t.Fatalf("volumes %v", fsOf)
	}
	for vol, src := range map[string]string{"drive-scsi0-p1": efiSrc, "drive-scsi1": dataSrc} {
		want := sums(t, src)
		got := sums(t, filepath.Join(out, "files", vol))
		for p, h := range want {
			if got[p] != h {
				t.Errorf("%s:%s differs or is missing", vol, p)
			}
		}
		t.Logf("%s: %d files copied, %d in the source", vol, len(got), len(want))
	}
}
