package testimg

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/internal/vmagen"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Disk is a disk image to put into an archive.
type Disk = vmagen.Disk

// Config is the qemu-server.conf of the test VM.
const Config = vmagen.Config

// WriteVMA writes a VMA archive of the disks (device ids 1..n in the given
// order) to w. Clusters go out as QEMU's backup job sends them: devices one
// after another in descending id, each in runs handled by parallel workers,
// so runs arrive out of order and the devices mix at their boundary.
func WriteVMA(w io.Writer, disks []Disk, configs []vma.Config, seed int64) (*vma.Header, error) {
	return vmagen.Write(w, disks, configs, seed, time.Unix(1765767603, 0))
}

// Compressors maps an extension to the command vzdump pipes through.
var Compressors = map[string][]string{
	".zst": {"zstd", "-q", "--threads=1", "-c"},
	".gz":  {"gzip", "--rsyncable", "-c"},
	".lzo": {"lzop", "-c"},
	"":     nil,
}

// BuildArchive writes the disks as dir/vzdump-qemu-100-2025_12_15-03_00_03.vma<ext>,
// compressed by the real CLI for ext (".zst", ".gz", ".lzo" or ""), and
// returns its path.
func BuildArchive(t testing.TB, dir string, disks []Disk, ext string, seed int64) string {
	t.Helper()
	return BuildArchiveAt(t, dir, disks, ext, seed, time.Unix(1765767603, 0))
}

// BuildArchiveAt is BuildArchive for a backup made at when (its name and
// the VMA header's ctime say so), as vzdump names one night's backup.
func BuildArchiveAt(t testing.TB, dir string, disks []Disk, ext string, seed int64, when time.Time) string {
	t.Helper()
	path := filepath.Join(dir, "vzdump-qemu-100-"+when.UTC().Format("2006_01_02-15_04_05")+".vma"+ext)
	out, err := os.Create(path)
	must(t, err)
	defer out.Close()
	cfg := []vma.Config{{Name: "qemu-server.conf", Data: []byte(Config)}}
	argv := Compressors[ext]
	if argv == nil {
		bw := bufio.NewWriterSize(out, 1<<20)
		_, err := vmagen.Write(bw, disks, cfg, seed, when)
		must(t, err)
		must(t, bw.Flush())
		return path
	}
	cmd := exec.Command(testutil.RequireTool(t, argv[0]), argv[1:]...)
	cmd.Stdout = out
	stdin, err := cmd.StdinPipe()
	must(t, err)
	var stderr bufWriter
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	bw := bufio.NewWriterSize(stdin, 1<<20)
	_, werr := vmagen.Write(bw, disks, cfg, seed, when)
	if werr == nil {
		werr = bw.Flush()
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v: %s", argv, err, stderr)
	}
	must(t, werr)
	return path
}

type bufWriter []byte

func (b *bufWriter) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
func (b bufWriter) String() string               { return fmt.Sprintf("%q", []byte(b)) }
