package rescue

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/payload"
	"github.com/vzsalvage/vzsalvage/report"
)

// refExtract restores an archive as Proxmox does (pct restore runs GNU
// tar -x with these flags), into a new directory.
func refExtract(t *testing.T, archive, dir string) string {
	t.Helper()
	ref := filepath.Join(dir, "ref")
	os.MkdirAll(ref, 0o755)
	args := []string{"xpf", archive, "--totals", "--numeric-owner", "--acls", "--xattrs",
		"--xattrs-include=user.*", "--xattrs-include=security.capability", "--warning=no-xattr-write", "-C", ref}
	testutil.Run(t, "tar", args...)
	return ref
}

// entry is what a restored tree holds at one path.
type entry struct {
	typ      fs.FileMode
	perm     fs.FileMode // with sticky; setuid and setgid are not restored by default
	uid, gid uint32
	size     int64
	mtime    int64 // ns
	sum      [32]byte
	target   string
	xattrs   string // user.* and ACLs, sorted
	ino      uint64
}

func describe(t *testing.T, p string) (entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return entry{}, err
	}
	info, err := os.Lstat(p)
	if err != nil {
		return entry{}, err
	}
	e := entry{typ: info.Mode().Type(), perm: info.Mode().Perm() | info.Mode()&fs.ModeSticky, uid: st.Uid, gid: st.Gid,
		mtime: st.Mtim.Nano(), ino: st.Ino}
	switch {
	case info.Mode().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			return e, err
		}
		e.size, e.sum = int64(len(b)), sha256.Sum256(b)
	case info.Mode()&fs.ModeSymlink != 0:
		e.target, _ = os.Readlink(p)
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		buf := make([]byte, 64<<10)
		n, _ := unix.Llistxattr(p, buf)
		var names []string
		for _, k := range strings.Split(string(buf[:n]), "\x00") {
			if strings.HasPrefix(k, "user.") || strings.HasPrefix(k, "system.posix_acl_") {
				v := make([]byte, 64<<10)
				m, _ := unix.Lgetxattr(p, k, v)
				names = append(names, k+"="+string(v[:max(m, 0)]))
			}
		}
		sort.Strings(names)
		e.xattrs = strings.Join(names, ";")
	}
	return e, nil
}

// compareTrees compares a restored tree with tar -x's. skip lists guest
// paths whose difference is allowed (damaged files). It returns how many
// regular files were compared, how many of them are identical (listed or
// not), and how many entries are missing; any other difference fails the
// test.
func compareTrees(t *testing.T, ref, got string, skip map[string]bool) (files, same, missing int) {
	t.Helper()
	return compareTreesInto(t, ref, got, skip, nil)
}

// refFile is a regular file of the reference tree: its content's hash,
// and whether the restored tree has it identical under its own path.
type refFile struct {
	sum  [32]byte
	same bool
}

// compareTreesInto is compareTrees that also fills all (if not nil) with
// every regular file of ref, by guest path.
func compareTreesInto(t *testing.T, ref, got string, skip map[string]bool, all map[string]refFile) (files, same, missing int) {
	t.Helper()
	root := os.Geteuid() == 0
	refIno := map[uint64]string{} // first path of each inode in ref
	gotIno := map[string]uint64{}
	filepath.WalkDir(ref, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(ref, p)
		guest := "/" + filepath.ToSlash(rel)
		if rel == "." {
			guest = "/"
		}
		if guest == "/etc/vzdump/pct.conf" || guest == "/etc/vzdump" || guest == "/etc/vzdump/pct.fw" {
			return nil // vzdump's config, not the guest's: rescue writes it beside the files
		}
		want, err := describe(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if want.typ.IsRegular() {
			files++
			if all != nil {
				all[guest] = refFile{sum: want.sum}
			}
		}
		have, err := describe(t, filepath.Join(got, rel))
		if want.typ&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
			if err == nil {
				t.Errorf("%s: special file recreated without --specials", guest)
			}
			return nil
		}
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v", guest, err)
			}
			// a member whose header was lost: nothing names it, the
			// archive's problems say where headers were lost
			missing++
			return nil
		}
		if !root {
			want.uid, want.gid, have.uid, have.gid = 0, 0, 0, 0
		}
		if want.typ.IsDir() {
			want.sum, have.sum = [32]byte{}, [32]byte{}
		}
		wantIno, haveIno := want.ino, have.ino
		want.ino, have.ino = 0, 0
		if want != have {
			if !skip[guest] {
				t.Errorf("%s differs:\n got  %+v\n want %+v", guest, have, want)
			}
			return nil
		}
		if want.typ.IsRegular() {
			same++
			if all != nil {
				all[guest] = refFile{sum: want.sum, same: true}
			}
			if first, ok := refIno[wantIno]; ok {
				if gotIno[first] != haveIno {
					t.Errorf("%s: not a hard link of %s", guest, first)
				}
			} else {
				refIno[wantIno] = guest
				gotIno[guest] = haveIno
			}
		}
		return nil
	})
	return files, same, missing
}

// containerTree builds the test container's root once per seed.
func containerTree(t *testing.T, files int, seed int64) string {
	t.Helper()
	testutil.RequireTool(t, "tar")
	testutil.RequireTool(t, "setfacl")
	testutil.RequireTool(t, "setfattr")
	dir := filepath.Join(t.TempDir(), "root")
	os.Mkdir(dir, 0o755)
	testimg.ContainerTree(t, dir, testimg.ContainerOptions{Files: files, Seed: seed})
	return dir
}

// TestContainerRestore: archives made by GNU tar with vzdump's flags and
// the real compressors restore byte-identical, with owners (as root),
// modes, times, symlinks, hard links, sparse files, xattrs and ACLs, like
// tar -x.
func TestContainerRestore(t *testing.T) {
	src := containerTree(t, 1200, 1)
	for _, ext := range []string{".zst", ".gz", ".lzo", ""} {
		t.Run("tar"+ext, func(t *testing.T) {
			dir := t.TempDir()
			arc := testimg.ContainerArchive(t, src, dir, ext, "2025_12_15-03_00_03")
			out := filepath.Join(dir, "out")
			rep, err := Run(arc, out, Options{Owners: true})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Intact() || len(rep.DamagedFiles) > 0 {
				t.Errorf("clean archive reported damaged: %s %+v", rep.Summary(), rep.DamagedFiles)
			}
			if b, err := os.ReadFile(filepath.Join(out, "pct.conf")); err != nil || string(b) != testimg.PctConf {
				t.Errorf("pct.conf: %q %v", b, err)
			}
			ref := refExtract(t, arc, dir)
			files, same, _ := compareTrees(t, ref, filepath.Join(out, "files", "rootfs"), nil)
			if files < 1200 || same != files {
				t.Errorf("%d of %d files identical", same, files)
			}
			// holes stay holes
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(out, "files/rootfs/var/lib/sparse2.img"), &st); err != nil || st.Blocks*512 > 1<<20 {
				t.Errorf("sparse file takes %d bytes (%v)", st.Blocks*512, err)
			}
		})
	}
}

// TestContainerGarbage overwrites 64 KiB in the middle of a container
// backup with garbage. In every case no file outside damaged_files differs
// from tar -x of the clean archive (content and metadata). With lzop
// (independent blocks) at least 95 % of the files are identical. With zstd
// the count is logged, not required: after a lost block the decoder's
// taint spreads through the rest of this tree's stream (each tar header
// copies the one before it, and the text copies earlier text), which this
// test does not hide. TestContainerGarbageStress runs more positions and
// codecs.
func TestContainerGarbage(t *testing.T) {
	garbageRuns(t, containerTree(t, 2000, 2), []float64{0.5}, map[string]float64{".lzo": 0.95, ".zst": 0})
}

// TestContainerGarbageStress (VZSALVAGE_STRESS=N): garbage at 15, 25, ...
// 85 % of archives of a 4,000-file tree, every codec.
func TestContainerGarbageStress(t *testing.T) {
	testutil.Stress(t)
	garbageRuns(t, containerTree(t, 4000, 2), []float64{0.15, 0.25, 0.35, 0.45, 0.5, 0.55, 0.65, 0.75, 0.85}, map[string]float64{".lzo": 0.95, "": 0.95, ".zst": 0, ".gz": 0})
}

// garbageRuns archives src with each compressor (extension -> the share of
// files that must stay identical) and damages it at each share of its
// length.
func garbageRuns(t *testing.T, src string, at []float64, exts map[string]float64) {
	for _, ext := range slices.Sorted(maps.Keys(exts)) {
		t.Run("tar"+ext, func(t *testing.T) {
			dir := t.TempDir()
			arc := testimg.ContainerArchive(t, src, dir, ext, "2025_12_15-03_00_03")
			ref := refExtract(t, arc, dir)
			b, err := os.ReadFile(arc)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range at {
				garbage(t, arc, b, a, ref, exts[ext])
			}
		})
	}
}

// tarProblem reports whether the tar reader found a problem.
func tarProblem(ps []damage.Problem) bool {
	for _, p := range ps {
		if p.Layer == "tar" {
			return true
		}
	}
	return false
}

// garbage damages a copy of the archive b at the share at of its length,
// rescues it and compares the files with ref. For a .tar.zst it also
// measures what the damaged data holds (zstdLimit) and fails when fewer
// files than the members with every byte known come back identical.
func garbage(t *testing.T, arc string, b []byte, at float64, ref string, want float64) {
	t.Helper()
	dir := t.TempDir()
	bad := bytes.Clone(b)
	p := int(float64(len(bad)) * at)
	rand.New(rand.NewSource(int64(at * 100))).Read(bad[p:min(len(bad), p+65536)])
	damaged := filepath.Join(dir, filepath.Base(arc))
	if err := os.WriteFile(damaged, bad, 0o444); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	rep, err := Run(damaged, out, Options{Owners: true})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, f := range rep.DamagedFiles {
		listed[f.Path] = true
	}
	a := rep.Archives[0]
	if rep.Volumes[0].DamagedBytes == 0 && len(rep.DamagedFiles) == 0 && !tarProblem(a.Problems) {
		// inside a raw (stored) zstd block, or inside a plain tar's file
		// data: nothing but a stream checksum can tell, if there is one
		if a.Checksum != "mismatch" && a.Checksum != "absent" {
			t.Fatalf("garbage at %.0f%%: not noticed, checksum %s", at*100, a.Checksum)
		}
		t.Logf("garbage at %.0f%%: silent (checksum %s)", at*100, a.Checksum)
		return
	}
	all := map[string]refFile{}
	files, same, missing := compareTreesInto(t, ref, filepath.Join(out, "files", "rootfs"), listed, all)
	t.Logf("garbage at %.0f%% of %d bytes: %d of %d files identical (%.1f %%), %d listed damaged, %d entries lost with their headers; first problem %s",
		at*100, len(b), same, files, 100*float64(same)/float64(files), len(rep.DamagedFiles), missing, a.Problems[0])
	nameless, whole := checkFragments(t, arc, rep, filepath.Join(out, "files", "rootfs"), all)
	t.Logf("garbage at %.0f%%: of %d files, %d identical under their own name (%.1f %%), %d more whole among the %d unnamed runs of content in lost+found (%.1f %%; %d of the runs are exactly a file's content), %d lost (%.1f %%)",
		at*100, files, same, 100*float64(same)/float64(files), nameless, len(rep.Fragments), 100*float64(nameless)/float64(files), whole,
		files-same-nameless, 100*float64(files-same-nameless)/float64(files))
	if strings.HasSuffix(arc, ".zst") {
		if lim, ok := zstdLimit(t, b, bad); ok {
			t.Logf("limit at %.0f%%: of %d members (files and hard links), %d (%.1f %%) have every byte known, %d (%.1f %%) their content; of the %d with their content known but not their headers, the size field is known for %d (%d in the stream as decoded, without the loss's true length)",
				at*100, lim.Members, lim.Whole, 100*float64(lim.Whole)/float64(lim.Members), lim.Content, 100*float64(lim.Content)/float64(lim.Members),
				lim.Content-lim.Whole, lim.SizeKnown, lim.SizeKnownAsDecoded)
			if same < lim.Whole {
				t.Errorf("garbage at %.0f%%: %d files identical, %d members have every byte known", at*100, same, lim.Whole)
			}
		}
	}
	if float64(same) < want*float64(files) {
		t.Errorf("garbage at %.0f%%: only %d of %d files identical", at*100, same, files)
	}
}

// TestContainerPinned restores the checked-in container backup (GNU tar
// with vzdump's flags, zstd; 300 files) clean, and with 64 KiB of garbage
// at fixed places of its compressed bytes: no file outside damaged_files
// differs from tar -x of the clean archive.
func TestContainerPinned(t *testing.T) {
	arc, err := filepath.Abs("testdata/vzdump-lxc-101-2025_12_15-03_00_03.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ref := refExtract(t, arc, dir)
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(arc, filepath.Join(dir, "clean"), Options{Owners: true})
	if err != nil || !rep.Intact() {
		t.Fatalf("clean: %v %s", err, rep.Summary())
	}
	if files, same, _ := compareTrees(t, ref, filepath.Join(dir, "clean", "files", "rootfs"), nil); same != files || files < 300 {
		t.Errorf("clean: %d of %d files identical", same, files)
	}
	for _, at := range []float64{0.2, 0.45, 0.8} {
		garbage(t, arc, b, at, ref, 0)
	}
}

// TestMakeBenchContainer writes the container tree and .tar.zst that
// scripts/bench-ctar.sh times, into $VZSALVAGE_BENCH_CT (skipped without it).
func TestMakeBenchContainer(t *testing.T) {
	dir := os.Getenv("VZSALVAGE_BENCH_CT")
	if dir == "" {
		t.Skip("VZSALVAGE_BENCH_CT not set")
	}
	files, _ := strconv.Atoi(os.Getenv("VZSALVAGE_BENCH_CT_FILES"))
	src := filepath.Join(dir, "root")
	os.RemoveAll(src)
	must(t, os.MkdirAll(src, 0o755))
	testimg.ContainerTree(t, src, testimg.ContainerOptions{Files: max(files, 1000), Seed: 3})
	arc := testimg.ContainerArchive(t, src, dir, ".zst", "2025_12_15-03_00_03")
	t.Log(arc)
}

// TestContainerAlso: a damaged newest backup combined with an older one by
// member: each damaged file that the older night holds with the same path,
// size and mtime, undamaged, is taken from it (listed "mixed"), and is
// identical to the newest's original; files that changed between the
// nights are not.
func TestContainerAlso(t *testing.T) {
	testutil.RequireTool(t, "lzop")
	src := containerTree(t, 800, 4)
	dir := t.TempDir()
	older := testimg.ContainerArchive(t, src, dir, ".lzo", "2025_12_14-03_00_03")
	// the next night: some files changed
	changed := map[string]bool{}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(changed) < 40 && strings.HasSuffix(p, "3.log") {
			must(t, os.WriteFile(p, []byte("changed the next night\n"), 0o644))
			rel, _ := filepath.Rel(src, p)
			changed["/"+rel] = true
		}
		return nil
	})
	newest := testimg.ContainerArchive(t, src, dir, ".lzo", "2025_12_15-03_00_03")
	ref := refExtract(t, newest, dir)
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	p := len(b) / 2
	rand.New(rand.NewSource(9)).Read(b[p : p+65536])
	damaged := filepath.Join(dir, "damaged", filepath.Base(newest))
	must(t, os.MkdirAll(filepath.Dir(damaged), 0o755))
	must(t, os.WriteFile(damaged, b, 0o444))

	alone, err := Run(damaged, filepath.Join(dir, "alone"), Options{Owners: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	rep, err := Run(damaged, out, Options{Owners: true, Also: []string{older}})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	mixed := 0
	for _, f := range rep.DamagedFiles {
		listed[f.Path] = true
		if f.State == "mixed" {
			mixed++
			if changed[f.Path] {
				t.Errorf("%s changed between the nights but was taken from the older", f.Path)
			}
		}
	}
	files, same, missing := compareTrees(t, ref, filepath.Join(out, "files", "rootfs"), listed)
	listedAlone := map[string]bool{}
	for _, f := range alone.DamagedFiles {
		listedAlone[f.Path] = true
	}
	_, sameAlone, _ := compareTrees(t, ref, filepath.Join(dir, "alone", "files", "rootfs"), listedAlone)
	t.Logf("alone: %d damaged files; with --also: %d of %d files identical (alone %d), %d mixed, %d lost with their headers",
		len(alone.DamagedFiles), same, files, sameAlone, mixed, missing)
	if mixed == 0 || same <= sameAlone {
		t.Errorf("nothing gained from the older backup")
	}
	for _, f := range rep.DamagedFiles {
		if f.State != "mixed" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(out, "files", "rootfs", f.Path)); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
	}
}

// checkFragments checks the unnamed runs of content a container rescue
// wrote to lost+found (rep.Fragments, in the tree at root): each is
// reported unverified, never among the files; written 0600 and the
// rescuer's own; and every byte of it is the original tar stream's (found
// at its offset, moved by the losses of unknown length before it). It
// returns how many files of the reference tree (all) that are not
// identical under their own name have their whole content in a fragment,
// and how many fragments are exactly some file's content.
func checkFragments(t *testing.T, arc string, rep *Report, root string, all map[string]refFile) (nameless, whole int) {
	t.Helper()
	if len(rep.Fragments) == 0 {
		return 0, 0
	}
	rc, err := payload.OpenDecoded(arc, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clean, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[[32]byte]bool{}
	for _, f := range all {
		sums[f.sum] = true
	}
	listed := map[string]bool{}
	for _, f := range rep.DamagedFiles {
		listed[f.Path] = true
	}
	got := map[[32]byte]bool{}
	var shift int64
	for _, f := range rep.Fragments {
		if f.State != report.FragmentUnverified || listed[f.Path] || !strings.HasPrefix(f.Path, "/lost+found/@") {
			t.Errorf("fragment %+v: not reported as unverified content in lost+found", f)
		}
		p := filepath.Join(root, f.Path)
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || st.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 ||
			st.Size() != f.Size || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
			t.Errorf("fragment %s: %v %v", f.Path, st, err)
			continue
		}
		bs, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if o := f.StreamOffset - shift; o < 0 || o+f.Size > int64(len(clean)) || !bytes.Equal(clean[o:o+f.Size], bs) {
			i := bytes.Index(clean, bs)
			if i < 0 {
				t.Errorf("fragment %s: its %d bytes are nowhere in the original tar stream", f.Path, f.Size)
				continue
			}
			shift = f.StreamOffset - int64(i)
		}
		sum := sha256.Sum256(bs)
		got[sum] = true
		if sums[sum] {
			whole++
		}
	}
	for _, f := range all {
		if !f.same && got[f.sum] {
			nameless++
		}
	}
	return nameless, whole
}
