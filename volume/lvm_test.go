package volume

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// lvm2's tools only work on block devices, and lvcreate wants
// device-mapper, which this machine lacks. With loop devices (root) and
// activation disabled, pvcreate, vgcreate, lvcreate, lvextend and
// vgcfgrestore all write real metadata; nothing is activated.

// loopPV is a PV to set up: a whole image, or a byte range of it.
type loopPV struct {
	img       string
	off, size int64 // size 0: the whole image
}

// lvmEnv runs lvm2 commands restricted to its own loop devices.
type lvmEnv struct {
	t     *testing.T
	loops []string
	conf  string
}

// needLoop skips the test (or fails it when VZSALVAGE_REQUIRE_TOOLS=1)
// when loop devices cannot be set up.
func needLoop(t *testing.T) {
	t.Helper()
	testutil.RequireTool(t, "losetup")
	testutil.RequireTool(t, "lvm")
	if os.Geteuid() != 0 {
		why := "lvm2 tests need root for loop devices"
		if os.Getenv("VZSALVAGE_REQUIRE_TOOLS") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

func newLVMEnv(t *testing.T, pvs ...loopPV) *lvmEnv {
	needLoop(t)
	t.Setenv("LVM_SUPPRESS_FD_WARNINGS", "1")
	e := &lvmEnv{t: t}
	var accept []string
	for _, p := range pvs {
		args := []string{"-f", "--show"}
		if p.size > 0 {
			args = append(args, "-o", strconv.FormatInt(p.off, 10), "--sizelimit", strconv.FormatInt(p.size, 10))
		}
		dev := strings.TrimSpace(string(testutil.Run(t, "losetup", append(args, p.img)...)))
		e.loops = append(e.loops, dev)
		accept = append(accept, fmt.Sprintf(`"a|^%s$|"`, dev))
	}
	t.Cleanup(e.detach)
	e.conf = fmt.Sprintf(`devices{filter=[%s,"r|.*|"] use_devicesfile=0 obtain_device_list_from_udev=0}`+
		` global{activation=0} backup{backup=0 archive=0} activation{udev_sync=0 udev_rules=0}`,
		strings.Join(accept, ","))
	return e
}

// lvm runs "lvm CMD --config ... ARGS".
func (e *lvmEnv) lvm(cmd string, args ...string) []byte {
	e.t.Helper()
	return testutil.Run(e.t, "lvm", append([]string{cmd, "--config", e.conf}, args...)...)
}

func (e *lvmEnv) detach() {
	for _, l := range e.loops {
		testutil.Run(e.t, "losetup", "-d", l)
	}
	e.loops = nil
}

// lvSeg is one segment as `lvs` reports it.
type lvSeg struct {
	Name     string `json:"lv_name"`
	Start    string `json:"seg_start_pe"`
	Size     string `json:"seg_size_pe"`
	Stripes  string `json:"stripes"`
	Stripe   string `json:"stripe_size"`
	PERanges string `json:"seg_pe_ranges"`
	Type     string `json:"segtype"`
}

// devExtent is where lvs says a segment area starts: device and extent.
type devExtent struct {
	dev string
	pe  int64
}

func (s lvSeg) areas(t testing.TB) []devExtent {
	var out []devExtent
	for _, f := range strings.Fields(s.PERanges) {
		dev, rng, _ := strings.Cut(f, ":")
		a, _, _ := strings.Cut(rng, "-")
		pe, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			t.Fatalf("pe range %q", f)
		}
		out = append(out, devExtent{dev, pe})
	}
	return out
}

func (e *lvmEnv) segments() []lvSeg {
	e.t.Helper()
	var out struct {
		Report []struct {
			LV []lvSeg `json:"lv"`
		} `json:"report"`
	}
	b := e.lvm("lvs", "-a", "--reportformat", "json", "--units", "b",
		"-o", "lv_name,seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges,segtype")
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("lvs: %v\n%s", err, b)
	}
	return out.Report[0].LV
}

// The VG every LVM test starts from: vg0 over two disks, extent size 1 MiB.
//   - drive-scsi0: GPT (sfdisk), p1 a small ext2, p2 a PV at 5 MiB.
//   - drive-scsi1: a whole-disk PV.
//   - root: linear, 8 MiB on p2; data: striped, 2 stripes of 64 KiB, 8 MiB;
//     span: linear, 4 MiB on p2 then extended by 4 MiB on drive-scsi1.
//
// Each LV holds an ext4 made by mke2fs and written through the mapping
// lvs reports (as dd would), so a reader that maps wrongly reads garbage.
const (
	lvmPartOff  = 5 << 20
	lvmPartSize = 32 << 20
	lvmDiskSize = 40 << 20
	lvmExtent   = 1 << 20
	lvmPEStart  = 1 << 20 // lvm2's default data alignment
)

// lvmFixture is the state of the shared LVM images.
type lvmFixture struct {
	disks  []string // drive-scsi0, drive-scsi1
	fs     map[string][]byte
	segs   []lvSeg
	devIdx map[string]int // loop device → disk index
	devOff map[string]int64
}

var lvmShared struct {
	fs   map[string][]byte
	segs []lvSeg
	idx  map[string]int
	off  map[string]int64
}

func lvmDisks(t *testing.T) lvmFixture {
	paths := cachedSet(t, []string{"lvm0.img", "lvm1.img"}, func(p []string) {
		for _, f := range p {
			if err := os.Truncate(f, lvmDiskSize); err != nil {
				t.Fatal(err)
			}
		}
		script := "label: gpt\nstart=2048, size=6144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=boot\n" +
			fmt.Sprintf("start=%d, size=%d, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=pv\n", lvmPartOff/512, lvmPartSize/512)
		sfdiskScript(t, p[0], script)
		fsInto(t, p[0], 1<<20, 3<<20, mkBy("ext2"))
		e := newLVMEnv(t, loopPV{img: p[0], off: lvmPartOff, size: lvmPartSize}, loopPV{img: p[1]})
		a, b := e.loops[0], e.loops[1]
		e.lvm("pvcreate", a, b)
		e.lvm("vgcreate", "-s", "1m", "vg0", a, b)
		e.lvm("lvcreate", "-an", "-Zn", "-L", "8M", "-n", "root", "vg0", a)
		e.lvm("lvcreate", "-an", "-Zn", "-i2", "-I", "64k", "-L", "8M", "-n", "data", "vg0")
		e.lvm("lvcreate", "-an", "-Zn", "-L", "4M", "-n", "span", "vg0", a)
		e.lvm("lvextend", "-L", "+4M", "vg0/span", b)
		lvmShared.segs = e.segments()
		lvmShared.idx = map[string]int{a: 0, b: 1}
		lvmShared.off = map[string]int64{a: lvmPartOff, b: 0}
		e.detach()
		lvmShared.fs = map[string][]byte{}
		for _, lv := range []string{"root", "data", "span"} {
			tmp := sparseFile(t, lv+".img", 8<<20)
			testutil.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "lv-"+lv, tmp)
			b, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			lvmShared.fs[lv] = b
			writeThroughLV(t, p, lvmShared.segs, lvmShared.idx, lvmShared.off, lv, b)
		}
	})
	return lvmFixture{disks: paths, fs: lvmShared.fs, segs: lvmShared.segs, devIdx: lvmShared.idx, devOff: lvmShared.off}
}

// sfdiskScript partitions img with an sfdisk script.
func sfdiskScript(t *testing.T, img, script string) {
	f := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "sh", "-c", testutil.RequireTool(t, "sfdisk")+` -q "$0" < "$1"`, img, f)
}

// lvToDisk maps LV byte x through the segments lvs reported to a disk
// index and byte offset, independently of the code under test.
func lvToDisk(t testing.TB, segs []lvSeg, idx map[string]int, off map[string]int64, lv string, x int64) (int, int64) {
	for _, s := range segs {
		if s.Name != lv {
			continue
		}
		start, _ := strconv.ParseInt(s.Start, 10, 64)
		size, _ := strconv.ParseInt(s.Size, 10, 64)
		if x < start*lvmExtent || x >= (start+size)*lvmExtent {
			continue
		}
		y := x - start*lvmExtent
		as := s.areas(t)
		stripe, _ := strconv.ParseInt(strings.TrimSuffix(s.Stripe, "B"), 10, 64)
		a, in := as[0], y
		if len(as) > 1 {
			c := y / stripe
			a = as[c%int64(len(as))]
			in = (c/int64(len(as)))*stripe + y%stripe
		}
		return idx[a.dev], off[a.dev] + lvmPEStart + a.pe*lvmExtent + in
	}
	t.Fatalf("LV %s has no byte %d", lv, x)
	return 0, 0
}

// writeThroughLV writes b as the content of LV lv, 4 KiB at a time.
func writeThroughLV(t *testing.T, disks []string, segs []lvSeg, idx map[string]int, off map[string]int64, lv string, b []byte) {
	for x := int64(0); x < int64(len(b)); x += 4096 {
		if allZero(b[x : x+4096]) {
			continue
		}
		d, o := lvToDisk(t, segs, idx, off, lv, x)
		patch(t, disks[d], o, b[x:x+4096])
	}
}

func TestLVM(t *testing.T) {
	fx := lvmDisks(t)
	d0, d1 := openDisk(t, "drive-scsi0", fx.disks[0]), openDisk(t, "drive-scsi1", fx.disks[1])
	vols := Discover([]Disk{d0, d1})
	var ids []string
	for _, v := range vols {
		ids = append(ids, v.ID+":"+v.FS)
		if len(v.Notes) != 0 {
			t.Errorf("%s: notes %q", v.ID, v.Notes)
		}
	}
	want := "drive-scsi0-p1:ext2 drive-scsi0-p2:LVM2_member drive-scsi0-vg0-root:ext4 drive-scsi0-vg0-data:ext4 drive-scsi0-vg0-span:ext4 drive-scsi1:LVM2_member"
	if strings.Join(ids, " ") != want {
		t.Fatalf("volumes\n %s\nwant\n %s", strings.Join(ids, " "), want)
	}
	for _, lv := range []string{"root", "data", "span"} {
		v := find(t, vols, "drive-scsi0-vg0-"+lv)
		if v.Kind != "lv" || v.Scheme != "lvm" || v.Name != lv || v.Size != 8<<20 || v.Damage != nil {
			t.Errorf("%s: %+v", lv, v)
		}
		if sumReader(t, v.R, v.Size) != sumReader(t, bytesReaderAt(fx.fs[lv]), 8<<20) {
			t.Errorf("%s: content differs from the ext4 written into it", lv)
		}
		if v.Label != "lv-"+lv {
			t.Errorf("%s: label %q", lv, v.Label)
		}
		di, off := lvToDisk(t, fx.segs, fx.devIdx, fx.devOff, lv, 0)
		if di != 0 || v.Offset != off {
			t.Errorf("%s: device offset %d, lvs says disk %d offset %d", lv, v.Offset, di, off)
		}
	}
	if v := find(t, vols, "drive-scsi0-vg0-data"); v.PartType != "striped (2 stripes)" {
		t.Errorf("data: type %q", v.PartType)
	}
	if v := find(t, vols, "drive-scsi1"); v.Kind != "disk" || v.UUID == "" {
		t.Errorf("whole-disk PV: %+v", v)
	}
	// The PV uuid matches what blkid says of the partition's bytes.
	p2 := find(t, vols, "drive-scsi0-p2")
	tmp := sparseFile(t, "p2.img", p2.Size)
	patch(t, tmp, 0, readAt(t, fx.disks[0], p2.Offset, 1<<20))
	if got := blkid(t, tmp); got["UUID"] != p2.UUID || got["TYPE"] != "LVM2_member" {
		t.Errorf("PV uuid %q, blkid %v", p2.UUID, got)
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, fmt.Errorf("EOF")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, fmt.Errorf("EOF")
	}
	return n, nil
}

// TestLVMDamageTranslation: damage on the disks, seen through the striped
// and the spanning LV, against a block-by-block mapping of lvs's layout.
func TestLVMDamageTranslation(t *testing.T) {
	fx := lvmDisks(t)
	d0, d1 := openDisk(t, "drive-scsi0", fx.disks[0]), openDisk(t, "drive-scsi1", fx.disks[1])
	d0.Damage, d1.Damage = &damage.Map{}, &damage.Map{}
	// On disk 1: a lost run across several stripe chunks of "data" and the
	// start of span's second segment; on disk 0 a tainted sector in the
	// middle of a data chunk and a lost page in root.
	d1.Damage.Add(lvmPEStart+lvmExtent-100_000, 300_000, damage.Lost)
	d1.Damage.Add(lvmPEStart+4*lvmExtent, 4096, damage.Lost)
	d0.Damage.Add(lvmPartOff+lvmPEStart+8*lvmExtent+70_000, 512, damage.Tainted)
	d0.Damage.Add(lvmPartOff+lvmPEStart+3*lvmExtent, 4096, damage.Lost)
	disks := []Disk{d0, d1}
	vols := Discover(disks)
	for _, lv := range []string{"root", "data", "span"} {
		v := find(t, vols, "drive-scsi0-vg0-"+lv)
		want := &damage.Map{}
		for x := int64(0); x < v.Size; x += 512 {
			di, off := lvToDisk(t, fx.segs, fx.devIdx, fx.devOff, lv, x)
			for _, r := range disks[di].Damage.Overlaps(off, 512) {
				want.Add(x+r.Off-off, r.Len, r.State)
			}
		}
		if fmt.Sprint(v.Damage.Ranges()) != fmt.Sprint(want.Ranges()) {
			t.Errorf("%s: damage %v\nwant %v", lv, v.Damage.Ranges(), want.Ranges())
		}
		if want.Empty() {
			t.Errorf("%s: the test damages nothing", lv)
		}
	}
}

// mdaText returns the offset (in the image) and size of the committed
// metadata copy of the PV starting at pvOff.
func mdaText(t *testing.T, img string, pvOff int64) (int64, int64) {
	h := readAt(t, img, pvOff+4096, 512)
	if string(h[4:20]) != lvmMDAMagic {
		t.Fatalf("no mda header at %d", pvOff+4096)
	}
	off := int64(binary.LittleEndian.Uint64(h[40:]))
	size := int64(binary.LittleEndian.Uint64(h[48:]))
	return pvOff + 4096 + off, size
}

// TestLVMDamagedMetadata damages the committed metadata copy: on one PV the
// other PV's copy is used; on both, the previous copy from the metadata
// ring is (in it, span is not extended yet).
func TestLVMDamagedMetadata(t *testing.T) {
	cases := []struct {
		name     string
		pvs      []int
		how      string
		spanSize int64
		note     string
	}{
		{"bit flip on one PV", []int{0}, "flip", 8 << 20, "a copy is damaged"},
		{"bit flip on both PVs", []int{0, 1}, "flip", 4 << 20, "older copy seqno"},
		{"zeroed on both PVs", []int{0, 1}, "zero", 4 << 20, "older copy seqno"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := lvmDisks(t)
			var seq int64 = -1
			for _, i := range c.pvs {
				base := []int64{lvmPartOff, 0}[i]
				off, size := mdaText(t, fx.disks[i], base)
				seq = seqnoHint(readAt(t, fx.disks[i], off, int(size)))
				if c.how == "flip" {
					flipBit(t, fx.disks[i], off+size/2, 2)
				} else {
					patch(t, fx.disks[i], off, make([]byte, size))
				}
			}
			vols := Discover([]Disk{openDisk(t, "drive-scsi0", fx.disks[0]), openDisk(t, "drive-scsi1", fx.disks[1])})
			span := find(t, vols, "drive-scsi0-vg0-span")
			if span.Size != c.spanSize || !hasNote(span.Notes, c.note) {
				t.Fatalf("span: size %d notes %q; want %d and %q", span.Size, span.Notes, c.spanSize, c.note)
			}
			if c.spanSize == 4<<20 && !hasNote(span.Notes, fmt.Sprintf("seqno %d", seq-1)) {
				t.Errorf("notes %q do not name seqno %d", span.Notes, seq-1)
			}
			root := find(t, vols, "drive-scsi0-vg0-root")
			if sumReader(t, root.R, root.Size) != sumReader(t, bytesReaderAt(fx.fs["root"]), 8<<20) || root.FS != "ext4" {
				t.Errorf("root read through the older metadata differs")
			}
			if p2 := find(t, vols, "drive-scsi0-p2"); !hasNote(p2.Notes, "checksum") {
				t.Errorf("p2 notes %q", p2.Notes)
			}
		})
	}
}

// TestLVMMissingPV: with only the first disk, the VG's LVs on it read
// fine; what lies on the missing PV reads as zeros and is lost.
func TestLVMMissingPV(t *testing.T) {
	fx := lvmDisks(t)
	vols := Discover([]Disk{openDisk(t, "drive-scsi0", fx.disks[0])})
	root := find(t, vols, "drive-scsi0-vg0-root")
	if root.Damage != nil || root.FS != "ext4" || !hasNote(root.Notes, "missing") {
		t.Errorf("root: damage %v fs %q notes %q", root.Damage.Ranges(), root.FS, root.Notes)
	}
	span := find(t, vols, "drive-scsi0-vg0-span")
	if got := span.Damage.Ranges(); len(got) != 1 || got[0] != (damage.Range{Off: 4 << 20, Len: 4 << 20, State: damage.Lost}) {
		t.Errorf("span damage %v", got)
	}
	data := find(t, vols, "drive-scsi0-vg0-data")
	if n := data.Damage.Count(0, data.Size, damage.Lost); n != 4<<20 {
		t.Errorf("data: %d bytes lost, want half", n)
	}
}

// TestLVMThin: a thin pool and a thin volume (restored with vgcfgrestore,
// which checks them, since lvcreate cannot make a pool here) are listed
// but not read; the pool's hidden sub-LVs are not listed.
func TestLVMThin(t *testing.T) {
	fx := lvmDisks(t)
	const thin = `
pool {
id = "Thin00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa1"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 4
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 1
chunk_size = 128
discards = "passdown"
zero_new_blocks = 1
}
}
thin1 {
id = "Thin00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa2"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 16
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1
}
}
pool_tmeta {
id = "Thin00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa3"
status = ["READ", "WRITE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv1", 8]
}
}
pool_tdata {
id = "Thin00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa4"
status = ["READ", "WRITE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 4
type = "striped"
stripe_count = 1
stripes = ["pv1", 9]
}
}
`
	restoreWith(t, fx, thin)
	vols := Discover([]Disk{openDisk(t, "drive-scsi0", fx.disks[0]), openDisk(t, "drive-scsi1", fx.disks[1])})
	for _, v := range vols {
		if strings.Contains(v.ID, "_t") {
			t.Errorf("hidden LV listed: %s", v.ID)
		}
	}
	pool, thin1 := find(t, vols, "drive-scsi1-vg0-pool"), find(t, vols, "drive-scsi1-vg0-thin1")
	if pool.PartType != "thin-pool" || pool.Size != 4<<20 || !hasNote(pool.Notes, "thin pool: not read") {
		t.Errorf("pool: %+v", pool)
	}
	if thin1.PartType != "thin" || thin1.Size != 16<<20 || !hasNote(thin1.Notes, "thin volume") {
		t.Errorf("thin1: %+v", thin1)
	}
	if _, err := thin1.R.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("thin volume read without error")
	}
	if root := find(t, vols, "drive-scsi0-vg0-root"); root.FS != "ext4" {
		t.Errorf("root after restore: %q", root.FS)
	}
}

// TestLVMDamagedLabel zeroes the first 4 KiB page of a PV (its label
// sector with it): the PV is still recognised by its metadata area, and
// every LV reads as before.
func TestLVMDamagedLabel(t *testing.T) {
	for i, base := range []int64{lvmPartOff, 0} {
		t.Run(fmt.Sprintf("PV %d", i), func(t *testing.T) {
			fx := lvmDisks(t)
			patch(t, fx.disks[i], base, make([]byte, 4096))
			vols := Discover([]Disk{openDisk(t, "drive-scsi0", fx.disks[0]), openDisk(t, "drive-scsi1", fx.disks[1])})
			pv := find(t, vols, []string{"drive-scsi0-p2", "drive-scsi1"}[i])
			if pv.FS != "LVM2_member" || !hasNote(pv.Notes, "LVM label not found") {
				t.Errorf("PV: fs %q notes %q", pv.FS, pv.Notes)
			}
			for _, lv := range []string{"root", "data", "span"} {
				v := find(t, vols, "drive-scsi0-vg0-"+lv)
				if v.Damage != nil || sumReader(t, v.R, v.Size) != sumReader(t, bytesReaderAt(fx.fs[lv]), 8<<20) {
					t.Errorf("%s: damage %v, or content differs", lv, v.Damage.Ranges())
				}
				if !hasNote(v.Notes, "identified by its metadata area") {
					t.Errorf("%s: notes %q", lv, v.Notes)
				}
			}
		})
	}
}

// restoreWith adds LV sections to vg0's metadata with vgcfgbackup,
// editing and vgcfgrestore (which checks them): the way to make LV types
// that lvcreate cannot make without device-mapper.
func restoreWith(t *testing.T, fx lvmFixture, lvs string) {
	e := newLVMEnv(t, loopPV{img: fx.disks[0], off: lvmPartOff, size: lvmPartSize}, loopPV{img: fx.disks[1]})
	backup := filepath.Join(t.TempDir(), "vg0")
	e.lvm("vgcfgbackup", "-f", backup, "vg0")
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "logical_volumes {\n", "logical_volumes {\n"+lvs, 1)
	if err := os.WriteFile(backup, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	e.lvm("vgcfgrestore", "--force", "-f", backup, "vg0")
	e.detach()
}

// linearLV is the metadata of a linear LV of n extents at extent pe of PV
// pv.
func linearLV(name, id, pv string, pe, n int, visible bool) string {
	vis := ""
	if visible {
		vis = `, "VISIBLE"`
	}
	return fmt.Sprintf("%s {\nid = %q\nstatus = [\"READ\", \"WRITE\"%s]\nflags = []\nsegment_count = 1\n"+
		"segment1 {\nstart_extent = 0\nextent_count = %d\ntype = \"striped\"\nstripe_count = 1\nstripes = [%q, %d]\n}\n}\n",
		name, id, vis, n, pv, pe)
}

// TestLVMRaid1: a raid1 LV (restored with vgcfgrestore) reads from its
// first image; with that image's disk missing, from the second.
func TestLVMRaid1(t *testing.T) {
	fx := lvmDisks(t)
	raid := `r1 {
id = "Raid00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa1"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "raid1"
device_count = 2
region_size = 1024
raids = ["r1_rmeta_0", "r1_rimage_0", "r1_rmeta_1", "r1_rimage_1"]
}
}
` + linearLV("r1_rmeta_0", "Raid00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa2", "pv1", 13, 1, false) +
		linearLV("r1_rimage_0", "Raid00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa3", "pv1", 14, 2, false) +
		linearLV("r1_rmeta_1", "Raid00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa4", "pv0", 16, 1, false) +
		linearLV("r1_rimage_1", "Raid00-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaa5", "pv0", 17, 2, false)
	restoreWith(t, fx, raid)
	img := sparseFile(t, "r1.img", 2<<20)
	testutil.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "mirrored", img)
	fs, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	patch(t, fx.disks[1], lvmPEStart+14*lvmExtent, fs)
	patch(t, fx.disks[0], lvmPartOff+lvmPEStart+17*lvmExtent, fs)
	for _, c := range []struct {
		disks int
		image string
	}{{2, "r1_rimage_0"}, {1, "r1_rimage_1"}} {
		disks := []Disk{openDisk(t, "drive-scsi0", fx.disks[0]), openDisk(t, "drive-scsi1", fx.disks[1])}[:c.disks]
		vols := Discover(disks)
		for _, v := range vols {
			if strings.Contains(v.ID, "_r") {
				t.Errorf("hidden LV listed: %s", v.ID)
			}
		}
		r1 := find(t, vols, []string{"", "drive-scsi0-vg0-r1", "drive-scsi1-vg0-r1"}[c.disks])
		if r1.PartType != "raid1" || r1.FS != "ext4" || r1.Label != "mirrored" || r1.Damage != nil ||
			sumReader(t, r1.R, r1.Size) != sumReader(t, bytesReaderAt(fs), 2<<20) || !hasNote(r1.Notes, c.image) {
			t.Errorf("%d disks: %+v", c.disks, r1)
		}
	}
}
