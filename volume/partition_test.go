package volume

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// sfdiskPart is one partition as `sfdisk --json` lists it.
type sfdiskPart struct {
	Node  string `json:"node"`
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	Type  string `json:"type"`
	Name  string `json:"name"`
}

// sfdiskParts returns sfdisk's view of an image's partitions, by number.
func sfdiskParts(t testing.TB, img string) (label string, parts map[int]sfdiskPart) {
	t.Helper()
	var out struct {
		PT struct {
			Label      string       `json:"label"`
			Partitions []sfdiskPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(testutil.Run(t, "sfdisk", "--json", img), &out); err != nil {
		t.Fatal(err)
	}
	parts = map[int]sfdiskPart{}
	for _, p := range out.PT.Partitions {
		n, err := strconv.Atoi(strings.TrimPrefix(p.Node, img))
		if err != nil {
			t.Fatalf("node %q", p.Node)
		}
		parts[n] = p
	}
	return out.PT.Label, parts
}

// fsInto makes a filesystem with mk in a file of n bytes and copies it into
// img at off, as dd conv=sparse would (img is zero there).
func fsInto(t *testing.T, img string, off, n int64, mk func(*testing.T, string)) {
	t.Helper()
	tmp := sparseFile(t, "fs.img", n)
	mk(t, tmp)
	copySparse(t, tmp, img, off, n)
}

func mkBy(name string) func(*testing.T, string) {
	for _, c := range fsCases {
		if c.name == name {
			return c.mk
		}
	}
	panic("no fs case " + name)
}

// checkAgainstSfdisk compares the partition volumes of a disk with sfdisk's
// view, and checks every partition reads the disk's bytes.
func checkAgainstSfdisk(t *testing.T, img string, vols []Volume, scheme string) {
	t.Helper()
	_, parts := sfdiskParts(t, img)
	n := 0
	for _, v := range vols {
		if v.Kind != "partition" {
			continue
		}
		n++
		p, ok := parts[v.Index]
		if !ok {
			t.Errorf("%s: sfdisk has no partition %d", v.ID, v.Index)
			continue
		}
		if v.Offset != p.Start*512 || v.Size != p.Size*512 || v.Scheme != scheme || v.Name != p.Name {
			t.Errorf("%s: offset %d size %d scheme %s name %q; sfdisk start %d size %d name %q",
				v.ID, v.Offset, v.Size, v.Scheme, v.Name, p.Start, p.Size, p.Name)
		}
		wantType := p.Type
		if scheme == "mbr" {
			x, _ := strconv.ParseUint(p.Type, 16, 8)
			wantType = fmt.Sprintf("0x%02x", x)
		}
		if !strings.HasPrefix(v.PartType, wantType) {
			t.Errorf("%s: type %q, sfdisk %q", v.ID, v.PartType, p.Type)
		}
		if !strings.Contains(v.PartType, "xtended") && sumReader(t, v.R, v.Size) != sumFile(t, img, v.Offset, v.Size) {
			t.Errorf("%s: content differs from the disk's bytes", v.ID)
		}
	}
	if n != len(parts) {
		t.Errorf("%d partitions found, sfdisk lists %d", n, len(parts))
	}
}

// gptDisk makes a 64 MiB GPT disk with sgdisk: an EFI system partition
// with FAT32, a Linux root with ext4, a swap partition and (as entry 5,
// entry 4 left empty) an LVM partition.
func gptDisk(t *testing.T) string {
	return cached(t, "gpt.img", func(img string) {
		if err := os.Truncate(img, 64<<20); err != nil {
			t.Fatal(err)
		}
		testutil.Run(t, "sgdisk",
			"-n", "1:1M:+33M", "-t", "1:ef00", "-c", "1:EFI system",
			"-n", "2:0:+20M", "-t", "2:8300", "-c", "2:root",
			"-n", "3:0:+4M", "-t", "3:8200", "-c", "3:swap",
			"-n", "5:0:+4M", "-t", "5:8e00", "-c", "5:lvm", img)
		fsInto(t, img, 1<<20, 33<<20, mkBy("fat32"))
		fsInto(t, img, 34<<20, 20<<20, mkBy("ext4"))
		fsInto(t, img, 54<<20, 4<<20, mkBy("swap"))
	})
}

func TestGPT(t *testing.T) {
	img := gptDisk(t)
	vols := Discover([]Disk{openDisk(t, "drive-scsi0", img)})
	checkAgainstSfdisk(t, img, vols, "gpt")
	want := map[string]string{"drive-scsi0-p1": "vfat", "drive-scsi0-p2": "ext4", "drive-scsi0-p3": "swap", "drive-scsi0-p5": ""}
	if len(vols) != len(want) {
		t.Fatalf("%d volumes, want %d: %+v", len(vols), len(want), vols)
	}
	for id, fs := range want {
		v := find(t, vols, id)
		if v.FS != fs || len(v.Notes) != 0 || v.Damage != nil {
			t.Errorf("%s: fs %q notes %q damage %v, want fs %q and nothing else", id, v.FS, v.Notes, v.Damage, fs)
		}
	}
	if v := find(t, vols, "drive-scsi0-p2"); v.PartType != "0FC63DAF-8483-4772-8E79-3D69D8477DE4 (Linux filesystem)" || v.Label != "lab-ext4" {
		t.Errorf("p2: type %q label %q", v.PartType, v.Label)
	}
}

// TestGPTBackup damages the primary GPT in the ways disks do and checks
// the backup at the end of the disk gives the same partitions, with a note.
func TestGPTBackup(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, img string)
		note   string
	}{
		{"zeroed header and entries", func(t *testing.T, img string) { patch(t, img, 512, make([]byte, 33*512)) }, "backup at LBA"},
		{"zeroed first 4 KiB page", func(t *testing.T, img string) { patch(t, img, 0, make([]byte, 4096)) }, "backup at LBA"},
		{"bit flip in header", func(t *testing.T, img string) { flipBit(t, img, 512+40, 3) }, "header CRC mismatch"},
		{"bit flip in entries", func(t *testing.T, img string) { flipBit(t, img, 1024+128+33, 0) }, "entries CRC mismatch"},
		{"garbage in entries", func(t *testing.T, img string) {
			patch(t, img, 1024, []byte(strings.Repeat("\xde\xad\xbe\xef", 256)))
		}, "entries CRC mismatch"},
		{"backup damaged only", func(t *testing.T, img string) { patch(t, img, 64<<20-512, make([]byte, 512)) }, "backup GPT damaged"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := gptDisk(t)
			c.damage(t, img)
			vols := Discover([]Disk{openDisk(t, "d", img)})
			if len(vols) != 4 {
				t.Fatalf("%d volumes: %+v", len(vols), vols)
			}
			if !hasNote(vols[0].Notes, c.note) {
				t.Errorf("notes %q, want %q", vols[0].Notes, c.note)
			}
			for _, v := range vols {
				if v.Kind != "partition" || v.Scheme != "gpt" {
					t.Errorf("%s: kind %s scheme %s", v.ID, v.Kind, v.Scheme)
				}
			}
			if v := find(t, vols, "d-p2"); v.Offset != 34<<20 || v.Size != 20<<20 || v.FS != "ext4" || v.Name != "root" {
				t.Errorf("p2 from the backup: %+v", v)
			}
			if v := find(t, vols, "d-p5"); v.Offset != 58<<20 || v.Size != 4<<20 || v.Name != "lvm" {
				t.Errorf("p5 from the backup: %+v", v)
			}
		})
	}
}

// TestGPTBothDamaged: without any usable GPT the disk itself is listed,
// with a note.
func TestGPTBothDamaged(t *testing.T) {
	img := gptDisk(t)
	patch(t, img, 512, make([]byte, 512))
	patch(t, img, 64<<20-512, make([]byte, 512))
	vols := Discover([]Disk{openDisk(t, "d", img)})
	if len(vols) != 1 || vols[0].Kind != "disk" || !hasNote(vols[0].Notes, "neither the primary nor the backup") {
		t.Fatalf("%+v", vols)
	}
}

// TestHybridMBR: sgdisk -h makes a hybrid MBR (a real entry beside the
// 0xEE one); Linux, and Discover, use the GPT.
func TestHybridMBR(t *testing.T) {
	img := gptDisk(t)
	testutil.Run(t, "sgdisk", "-h", "1:EE", img)
	es, ok := parseMBR(readAt(t, img, 0, 512))
	if !ok || nonProtective(es) == 0 || !hasProtective(es) {
		t.Fatalf("sgdisk -h did not make a hybrid MBR: %+v", es)
	}
	vols := Discover([]Disk{openDisk(t, "d", img)})
	checkAgainstSfdisk(t, img, vols, "gpt")
	if !hasNote(vols[0].Notes, "hybrid MBR") {
		t.Errorf("notes %q", vols[0].Notes)
	}
}

// mbrDisk makes a 32 MiB MBR disk with sfdisk: a primary, an extended
// partition with two logicals, and another primary after it.
func mbrDisk(t *testing.T) string {
	return cached(t, "mbr.img", func(img string) { makeMBRDisk(t, img) })
}

func makeMBRDisk(t *testing.T, img string) {
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("label: dos\n"+
		"start=2048, size=8192, type=83\n"+
		"start=10240, size=40960, type=5\n"+
		"start=51200, size=8192, type=7\n"+
		"start=12288, size=8192, type=83\n"+
		"start=22528, size=8192, type=82\n"), 0o644)
	cmd := testutil.RequireTool(t, "sfdisk")
	sh := testutil.RequireTool(t, "sh")
	testutil.Run(t, sh, "-c", cmd+" -q "+img+" < "+script)
	fsInto(t, img, 2048*512, 8192*512, mkBy("ext2"))
	fsInto(t, img, 51200*512, 8192*512, mkBy("ntfs"))
	fsInto(t, img, 12288*512, 8192*512, mkBy("ext3"))
	fsInto(t, img, 22528*512, 8192*512, mkBy("swap"))
}

func TestMBRExtended(t *testing.T) {
	img := mbrDisk(t)
	vols := Discover([]Disk{openDisk(t, "sda", img)})
	checkAgainstSfdisk(t, img, vols, "mbr")
	want := []struct{ id, fs string }{{"sda-p1", "ext2"}, {"sda-p2", ""}, {"sda-p3", "ntfs"}, {"sda-p5", "ext3"}, {"sda-p6", "swap"}}
	if len(vols) != len(want) {
		t.Fatalf("%d volumes", len(vols))
	}
	for i, w := range want {
		if vols[i].ID != w.id || vols[i].FS != w.fs || len(vols[i].Notes) != 0 {
			t.Errorf("volume %d: %s fs %q notes %q, want %s %q", i, vols[i].ID, vols[i].FS, vols[i].Notes, w.id, w.fs)
		}
	}
}

// TestMBRDamagedEBR: a zeroed second EBR loses the logicals from there on,
// with a note; the rest is still found.
func TestMBRDamagedEBR(t *testing.T) {
	img := mbrDisk(t)
	// The second EBR lies just before the second logical partition.
	_, parts := sfdiskParts(t, img)
	patch(t, img, (parts[6].Start-2048)*512, make([]byte, 512))
	vols := Discover([]Disk{openDisk(t, "sda", img)})
	if len(vols) != 4 || vols[len(vols)-1].ID != "sda-p5" || !hasNote(vols[0].Notes, "EBR at sector") {
		t.Fatalf("%d volumes, notes %q", len(vols), vols[0].Notes)
	}
}

// TestWholeDisk: a filesystem on the whole disk is one volume named after
// the disk, even for exFAT and FAT, whose boot sector looks like an MBR.
func TestWholeDisk(t *testing.T) {
	for _, name := range []string{"ext4", "exfat", "fat32", "xfs", "ntfs"} {
		t.Run(name, func(t *testing.T) {
			var fc fsCase
			for _, c := range fsCases {
				if c.name == name {
					fc = c
				}
			}
			img := sparseFile(t, name+".img", fc.size)
			fc.mk(t, img)
			vols := Discover([]Disk{openDisk(t, "drive-virtio0", img)})
			if len(vols) != 1 || vols[0].ID != "drive-virtio0" || vols[0].Kind != "disk" || vols[0].FS != fc.want || len(vols[0].Notes) != 0 {
				t.Fatalf("%+v", vols)
			}
		})
	}
}

// TestPartitionDamage: the disk's damage map, sliced into each partition's
// offsets; a truncated disk marks what is missing as lost.
func TestPartitionDamage(t *testing.T) {
	img := gptDisk(t)
	d := openDisk(t, "d", img)
	d.Damage = &damage.Map{}
	d.Damage.Add(34<<20-4096, 8192, damage.Lost)  // straddles p1 / p2
	d.Damage.Add(40<<20, 100, damage.Tainted)     // inside p2
	d.Damage.Add(62<<20+512, 512, damage.Tainted) // after every partition
	vols := Discover([]Disk{d})
	p1, p2, p3 := find(t, vols, "d-p1"), find(t, vols, "d-p2"), find(t, vols, "d-p3")
	want1 := []damage.Range{{Off: 33<<20 - 4096, Len: 4096, State: damage.Lost}}
	want2 := []damage.Range{{Off: 0, Len: 4096, State: damage.Lost}, {Off: 6 << 20, Len: 100, State: damage.Tainted}}
	if fmt.Sprint(p1.Damage.Ranges()) != fmt.Sprint(want1) || fmt.Sprint(p2.Damage.Ranges()) != fmt.Sprint(want2) || p3.Damage != nil {
		t.Errorf("p1 %v p2 %v p3 %v", p1.Damage.Ranges(), p2.Damage.Ranges(), p3.Damage.Ranges())
	}

	// Cut the disk in the middle of p2: its tail reads as zeros, is lost,
	// and p3 and p5 (wholly past the end) too.
	d.Damage = nil
	d.Size = 44 << 20
	d.R = io.NewSectionReader(d.R, 0, d.Size)
	vols = Discover([]Disk{d})
	p2 = find(t, vols, "d-p2")
	if got := p2.Damage.Ranges(); len(got) != 1 || got[0] != (damage.Range{Off: 10 << 20, Len: 10 << 20, State: damage.Lost}) {
		t.Errorf("truncated p2 damage %v", got)
	}
	if p5 := find(t, vols, "d-p5"); p5.Damage.Count(0, p5.Size, damage.Lost) != p5.Size || !hasNote(vols[0].Notes, "past the end of the disk") {
		t.Errorf("p5 damage %v notes %q", p5.Damage.Ranges(), vols[0].Notes)
	}
	b := make([]byte, 4096)
	if n, err := p2.R.ReadAt(b, 12<<20); n != len(b) || err != nil || !allZero(b) {
		t.Errorf("read past the disk's end: %d %v", n, err)
	}
}

// TestTableAndFilesystemAtZero: an MBR written over a whole-disk XFS
// (sfdisk --wipe never keeps the XFS superblock in sector 0). Both views
// are listed, the disk with a note.
func TestTableAndFilesystemAtZero(t *testing.T) {
	img := sparseFile(t, "both.img", 300<<20)
	testutil.Run(t, "mkfs.xfs", "-q", img)
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("label: dos\nstart=2048, size=8192, type=83\n"), 0o644)
	testutil.Run(t, "sh", "-c", testutil.RequireTool(t, "sfdisk")+` -q --wipe never "$0" < "$1"`, img, script)
	vols := Discover([]Disk{openDisk(t, "d", img)})
	if len(vols) != 2 || vols[0].ID != "d" || vols[0].FS != "xfs" || !hasNote(vols[0].Notes, "alongside a mbr partition table") ||
		vols[1].ID != "d-p1" || vols[1].Offset != 2048*512 {
		t.Fatalf("%+v", vols)
	}
}
