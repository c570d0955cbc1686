package rescue

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestRescueDirtyXFSLog: a VM whose data disk is XFS with a dirty log
// (the pinned image of fs/xfs, made by the kernel: changes, then
// xfs_io shutdown -f) is rescued with the log replayed in memory, as the
// kernel's own recovery sees it, and says so; with NoJournal it is
// rescued as on disk (mount -o norecovery), and says that.
func TestRescueDirtyXFSLog(t *testing.T) {
	xfsData := filepath.Join(testutil.Root(), "fs", "xfs", "testdata")
	zb, err := os.ReadFile(filepath.Join(xfsData, "dirty-log-v5.img.zst"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := zstd.NewReader(bytes.NewReader(zb))
	if err != nil {
		t.Fatal(err)
	}
	img, err := io.ReadAll(d)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disks := []testimg.Disk{{Name: "drive-scsi1", Path: filepath.Join(dir, "data.raw")}}
	if err := os.WriteFile(disks[0].Path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	arc := testimg.BuildArchive(t, dir, disks, ".zst", 3)
	for _, c := range []struct {
		noJournal bool
		manifest  string
		note      string
		md        string
	}{
		{false, "dirty-log-v5.replayed", "log replayed: ", "log (XFS) held unfinished writes"},
		{true, "dirty-log-v5.ondisk", "log is dirty, not replayed", "log is dirty, not replayed"},
	} {
		out := filepath.Join(dir, c.manifest)
		rep, err := Run(arc, out, Options{NoJournal: c.noJournal})
		if err != nil {
			t.Fatal(err)
		}
		var notes []string
		for _, v := range rep.Volumes {
			notes = append(notes, v.Notes...)
		}
		if !strings.Contains(strings.Join(notes, "\n"), c.note) {
			t.Errorf("NoJournal %v: notes %q do not say %q", c.noJournal, notes, c.note)
		}
		md, _ := os.ReadFile(filepath.Join(out, "report.md"))
		if !bytes.Contains(md, []byte(c.md)) {
			t.Errorf("NoJournal %v: report.md does not say %q", c.noJournal, c.md)
		}
		got := sums(t, filepath.Join(out, "files", "drive-scsi1"))
		want := 0
		fh, err := os.Open(filepath.Join(xfsData, c.manifest))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), " ", 4)
			if len(f) != 4 || f[0] != "f" {
				continue
			}
			want++
			h := got["/"+f[3]]
			if hex.EncodeToString(h[:]) != f[2] {
				t.Errorf("NoJournal %v: %s differs from the kernel's or is missing", c.noJournal, f[3])
			}
		}
		fh.Close()
		if len(got) != want {
			t.Errorf("NoJournal %v: %d files copied, the kernel's tree has %d", c.noJournal, len(got), want)
		}
	}
}
