//go:build linux

package rescue

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/fs/btrfs"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestRescueWindowsAndBtrfs: a VM whose first disk is laid out as Windows
// installs itself (GPT: EFI system partition, Microsoft reserved, the
// NTFS Windows partition, an NTFS recovery partition; mkntfs and ntfscp,
// with alternate data streams) and whose second disk is btrfs (mkfs.btrfs
// --rootdir), backed up in a VMA: rescue identifies every partition and
// copies every file of both NTFS partitions and of the btrfs disk,
// byte-identical, big streams as files "FILE:STREAM" beside their file and
// small ones as user.* xattrs.
func TestRescueWindowsAndBtrfs(t *testing.T) {
	dir := t.TempDir()
	efiSrc := filepath.Join(dir, "efi-src")
	btrfsSrc := filepath.Join(dir, "btrfs-src")
	for _, d := range []string{efiSrc, btrfsSrc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	efi := filepath.Join(efiSrc, "EFI", "Microsoft", "Boot", "bootmgfw.efi")
	os.MkdirAll(filepath.Dir(efi), 0o755)
	if err := os.WriteFile(efi, bytes.Repeat([]byte("MZ windows boot manager "), 4000), 0o644); err != nil {
		t.Fatal(err)
	}
	win := map[string][]byte{
		"pagefile.sys":              testimg.DiskData(3<<20, 1),
		"report.docx":               testimg.DiskData(150<<10, 2),
		"desktop.ini":               []byte("[.ShellClassInfo]\r\n"), // resident
		"empty.txt":                 nil,
		"setup.exe":                 testimg.DiskData(400<<10, 3),
		"setup.exe:Zone.Identifier": []byte("[ZoneTransfer]\r\nZoneId=3\r\n"),
		"setup.exe:thumbs":          testimg.DiskData(100<<10, 4), // over 64 KiB: a file of its own
		"Windows-is-not-here.log":   bytes.Repeat([]byte("a line of a log\r\n"), 5000),
	}
	rec := map[string][]byte{"Winre.wim": testimg.DiskData(2<<20, 5), "ReAgent.xml": []byte("<?xml version='1.0'?>\r\n")}
	testimg.Tree(t, btrfsSrc, testimg.TreeOptions{Files: 120, Seed: 6, Big: true})

	disks := []testimg.Disk{
		{Name: "drive-scsi0", Path: filepath.Join(dir, "windows.raw")},
		{Name: "drive-scsi1", Path: filepath.Join(dir, "btrfs.raw")},
	}
	testimg.WindowsDisk(t, disks[0].Path, 96<<20, efiSrc, win, rec)
	testimg.BtrfsFrom(t, disks[1].Path, 128<<20, btrfsSrc)
	arc := testimg.BuildArchive(t, dir, disks, ".zst", 7)
	out := filepath.Join(dir, "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact() {
		t.Fatalf("not intact: %s", rep.Summary())
	}

	type seen struct{ fs, partType, label string }
	got := map[string]seen{}
	for _, v := range rep.Volumes {
		got[v.ID] = seen{v.FS, v.PartType, v.Label}
		if v.Error != "" {
			t.Errorf("%s: %s", v.ID, v.Error)
		}
	}
	for id, w := range map[string]seen{
		"drive-scsi0-p1": {"vfat", "EFI System", ""},
		"drive-scsi0-p2": {"", "Microsoft reserved", ""},
		"drive-scsi0-p3": {"ntfs", "Microsoft basic data", "Windows"},
		"drive-scsi0-p4": {"ntfs", "Windows recovery environment", "Recovery"},
		"drive-scsi1":    {"btrfs", "", ""},
	} {
		g := got[id]
		if g.fs != w.fs || !strings.Contains(g.partType, w.partType) || w.label != "" && g.label != w.label {
			t.Errorf("%s: got %+v, want %+v", id, g, w)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !bytes.Contains(md, []byte("Microsoft reserved partition")) {
		t.Errorf("report.md does not name the Microsoft reserved partition (%v)", err)
	}

	ntfsWant := func(files map[string][]byte) map[string][32]byte {
		want := map[string][32]byte{}
		for n, b := range files {
			if strings.Contains(n, ":") && len(b) <= 64<<10 {
				continue // a small stream is an xattr: checked below
			}
			want["/"+n] = sha256.Sum256(b)
		}
		return want
	}
	for vol, want := range map[string]map[string][32]byte{
		"drive-scsi0-p1": sums(t, efiSrc),
		"drive-scsi0-p3": ntfsWant(win),
		"drive-scsi0-p4": ntfsWant(rec),
		"drive-scsi1":    sums(t, btrfsSrc),
	} {
		have := sums(t, filepath.Join(out, "files", vol))
		for p, h := range want {
			if have[p] != h {
				t.Errorf("%s:%s differs or is missing", vol, p)
			}
		}
		t.Logf("%s: %d files copied, %d in the source", vol, len(have), len(want))
	}
	x := make([]byte, 256)
	n, err := syscall.Getxattr(filepath.Join(out, "files", "drive-scsi0-p3", "setup.exe"), "user.Zone.Identifier", x)
	if err != nil || string(x[:n]) != string(win["setup.exe:Zone.Identifier"]) {
		t.Errorf("setup.exe: stream Zone.Identifier as xattr: %q, %v", x[:max(n, 0)], err)
	}
}

// TestRescueBtrfsChecksum: one bit flipped in a file's data on a btrfs
// disk before the backup (silent damage: the VMA itself is intact) is
// found by btrfs's data checksums: rescue names that file, and only it,
// with the bad sector as a located range; every other file is identical.
func TestRescueBtrfsChecksum(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	testimg.Tree(t, src, testimg.TreeOptions{Files: 60, Seed: 8, Big: true})
	disk := testimg.Disk{Name: "drive-scsi0", Path: filepath.Join(dir, "btrfs.raw")}
	testimg.BtrfsFrom(t, disk.Path, 128<<20, src)

	fh, err := os.OpenFile(disk.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := fh.Stat()
	bf, err := btrfs.Open(fh, st.Size(), btrfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const victim = "/big1.bin"
	n, err := fs.Lookup(bf, victim)
	if err != nil {
		t.Fatal(err)
	}
	lay, err := bf.Layout(n)
	if err != nil || len(lay.Data) == 0 || lay.Data[0].Length < 3*4096 {
		t.Fatalf("%s: layout %+v, %v", victim, lay, err)
	}
	e := lay.Data[0]
	at := e.Physical + 2*4096 + 100 // file bytes 8192..12287 hold it
	b := []byte{0}
	fh.ReadAt(b, at)
	b[0] ^= 0x04
	if _, err := fh.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	arc := testimg.BuildArchive(t, dir, []testimg.Disk{disk}, ".zst", 9)
	out := filepath.Join(dir, "rescue")
	rep, err := Run(arc, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Intact() || len(rep.DamagedFiles) != 1 {
		t.Fatalf("damaged files %+v: want exactly %s", rep.DamagedFiles, victim)
	}
	d := rep.DamagedFiles[0]
	want := damage.Range{Off: e.Logical + 2*4096, Len: 4096}
	if d.Path != victim || d.State != fs.StatePartial || d.BadBytes != 4096 || len(d.Ranges) != 1 ||
		d.Ranges[0].Off != want.Off || d.Ranges[0].Len != want.Len {
		t.Errorf("got %+v, want %s partial with bytes %d+%d bad", d, victim, want.Off, want.Len)
	}
	// Outside the range the copy is the original; inside, zeros (missing).
	orig, err := os.ReadFile(filepath.Join(src, victim))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(filepath.Join(out, "files", "drive-scsi0", victim))
	if err != nil || len(cp) != len(orig) {
		t.Fatalf("copy of %s: %d bytes, %v", victim, len(cp), err)
	}
	lo, hi := want.Off, want.Off+want.Len
	if !bytes.Equal(cp[:lo], orig[:lo]) || !bytes.Equal(cp[hi:], orig[hi:]) || !bytes.Equal(cp[lo:hi], make([]byte, want.Len)) {
		t.Errorf("copy of %s: bytes outside %d+%d differ, or inside are not zeros", victim, lo, want.Len)
	}
	srcSums, got := sums(t, src), sums(t, filepath.Join(out, "files", "drive-scsi0"))
	same := 0
	for p, h := range srcSums {
		switch {
		case got[p] == h:
			same++
		case p != victim:
			t.Errorf("%s differs or is missing but is not listed as damaged", p)
		}
	}
	t.Logf("%d of %d files identical; %s: %+v", same, len(srcSums), victim, d)
}

// TestRescueWindowsDamaged: 4 KiB of garbage at three and at seven places
// of a .vma.lzo and of a .vma.zst of the Windows disk: every file of the
// NTFS partitions that differs from its original is listed in
// damaged_files (or lies on a volume that could not be read, which the
// report says), except where the damage is silent.
//
// lzop checks every block, so no damage is silent there. In zstd, garbage
// inside raw content (a raw block, or the raw literals of a compressed
// block) decodes without error: no decoder can locate it, only the frame's
// checksum fails (or cannot be checked past other damage), and every
// later match that copies those bytes copies them wrong. The test data is
// incompressible, so most runs land there. Which runs are silent is asked
// of the zstd CLI (each alone decodes with --no-check); a file that
// differs but is not listed must then be what a rescue of the archive
// damaged by the silent runs alone gives (the archive's own wrong bytes,
// as any decoder reads them: nothing we place or decode wrongly), and the
// report must say that its checksum does not vouch for the rest.
func TestRescueWindowsDamaged(t *testing.T) {
	dir := t.TempDir()
	efiSrc := filepath.Join(dir, "efi-src")
	if err := os.Mkdir(efiSrc, 0o755); err != nil {
		t.Fatal(err)
	}
	win, rec := map[string][]byte{}, map[string][]byte{}
	for i := range 60 {
		win["file"+strconv.Itoa(i)+".dat"] = testimg.DiskData(1<<10+i*i*200, uint64(100+i))
	}
	for i := range 10 {
		rec["rec"+strconv.Itoa(i)+".bin"] = testimg.DiskData(100<<10+i*5000, uint64(200+i))
	}
	disk := testimg.Disk{Name: "drive-scsi0", Path: filepath.Join(dir, "windows.raw")}
	testimg.WindowsDisk(t, disk.Path, 96<<20, efiSrc, win, rec)
	for _, c := range []struct {
		name, ext string
		pcts      []int
	}{
		{"lzo-three", ".lzo", []int{30, 50, 70}},
		{"lzo-seven", ".lzo", []int{20, 30, 40, 50, 60, 70, 80}},
		{"zst-three", ".zst", []int{30, 50, 70}},
		{"zst-seven", ".zst", []int{20, 30, 40, 50, 60, 70, 80}},
	} {
		t.Run(c.name, func(t *testing.T) {
			arc := testimg.BuildArchive(t, t.TempDir(), []testimg.Disk{disk}, c.ext, 10)
			clean, err := os.ReadFile(arc)
			if err != nil {
				t.Fatal(err)
			}
			b, silentOnly := bytes.Clone(clean), bytes.Clone(clean)
			rng := rand.New(rand.NewSource(17))
			silent := 0
			for _, pct := range c.pcts {
				p := len(b) * pct / 100
				rng.Read(b[p : p+4<<10])
				if c.ext == ".zst" && zstdSilent(t, clean, p, b[p:p+4<<10]) {
					copy(silentOnly[p:], b[p:p+4<<10])
					silent++
				}
			}
			if err := os.WriteFile(arc, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "rescue")
			rep, err := Run(arc, out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Intact() {
				t.Fatal("intact after garbage")
			}
			ref := "" // the rescue of the silent damage alone
			if silent > 0 {
				ref = filepath.Join(t.TempDir(), "silent")
				silentArc := filepath.Join(t.TempDir(), "silent.vma"+c.ext)
				if err := os.WriteFile(silentArc, silentOnly, 0o644); err != nil {
					t.Fatal(err)
				}
				srep, err := Run(silentArc, ref, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if srep.unverified() == "" || rep.unverified() == "" {
					t.Errorf("%d silent run(s): the reports do not say the checksum cannot vouch for the rest (%q, %q)",
						silent, srep.unverified(), rep.unverified())
				}
			}
			t.Logf("%d of %d runs silent", silent, len(c.pcts))
			listed := map[string]bool{}
			for _, f := range rep.DamagedFiles {
				listed[f.Volume+":"+f.Path] = true
			}
			for _, v := range rep.Volumes {
				if v.Error != "" {
					listed[v.ID+":/"] = true // a volume that could not be read: its files are lost with it
				}
				t.Logf("%s: %q %d files, %d damaged, %d damaged bytes %s", v.ID, v.FS, v.Files, v.DamagedFiles, v.DamagedBytes, v.Error)
			}
			for vol, files := range map[string]map[string][]byte{"drive-scsi0-p3": win, "drive-scsi0-p4": rec} {
				same, silentWrong := 0, 0
				for name, want := range files {
					got, err := os.ReadFile(filepath.Join(out, "files", vol, name))
					switch {
					case err == nil && bytes.Equal(got, want):
						same++
					case listed[vol+":/"+name] || listed[vol+":/"]:
					case err == nil && ref != "" && sameFile(filepath.Join(ref, "files", vol, name), got):
						silentWrong++
					default:
						t.Errorf("%s:/%s differs from the original (or is missing) but is not listed as damaged", vol, name)
					}
				}
				t.Logf("%s: %d of %d files identical, %d wrong by silent damage alone", vol, same, len(files), silentWrong)
			}
		})
	}
}

// zstdSilent says whether garbage over clean[at:] leaves the stream
// decodable by the zstd CLI without its checksum: damage that no decoder
// can see.
func zstdSilent(t *testing.T, clean []byte, at int, garbage []byte) bool {
	t.Helper()
	d := bytes.Clone(clean)
	copy(d[at:], garbage)
	cmd := exec.Command(testutil.RequireTool(t, "zstd"), "-dq", "--no-check", "-c")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(d), io.Discard
	return cmd.Run() == nil
}

// sameFile says whether the file at path holds exactly b.
func sameFile(path string, b []byte) bool {
	f, err := os.ReadFile(path)
	return err == nil && bytes.Equal(f, b)
}
