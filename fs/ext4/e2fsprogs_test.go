//go:build linux

package ext4

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// e2fsResult is what one reader got out of one image.
type e2fsResult struct {
	files   int // regular files written out (debugfs) or opened and read (ours)
	orphans int
	err     string
}

// Per-image limits for our reader in TestE2fsprogsImages.
const (
	e2fsTimeout  = 10 * time.Second
	e2fsMaxAlloc = 1 << 30  // bytes allocated while reading one image
	e2fsMaxFile  = 16 << 20 // bytes read of each file
)

var updateDebugfs = flag.Bool("update-debugfs", false,
	"run debugfs on the e2fsprogs images and rewrite "+debugfsGolden)

// debugfsGolden records how many regular files `debugfs -c -R "rdump /
// DIR"` writes out of each e2fsprogs image. Running debugfs live takes
// minutes (it creates 160,000 files); go test -run TestE2fsprogsImages
// -update-debugfs regenerates the record, VZSALVAGE_LIVE_DEBUGFS=1 compares
// with a live run instead.
const debugfsGolden = "testdata/e2fsprogs-debugfs.golden"

// TestE2fsprogsImages opens, walks and reads every file of the 218 images
// of e2fsprogs' test suite (most deliberately corrupted), each under a
// timeout and an allocation bound, and compares the number of files read
// with what debugfs -c rdump writes out.
func TestE2fsprogsImages(t *testing.T) {
	dir := testutil.Fixture(t, "e2fsprogs-tests")
	imgs, _ := filepath.Glob(filepath.Join(dir, "*.img.gz"))
	if len(imgs) != 218 {
		t.Errorf("found %d images, want 218", len(imgs))
	}
	live := *updateDebugfs || os.Getenv("VZSALVAGE_LIVE_DEBUGFS") == "1"
	var golden map[string]int
	var debugfs, tmp string
	if live {
		debugfs = testutil.RequireTool(t, "debugfs")
		tmp = t.TempDir()
	} else {
		golden = readGolden(t)
	}
	type pending struct {
		name string
		ours e2fsResult
		dfs  chan e2fsResult
	}
	sem := make(chan struct{}, 4) // debugfs runs in flight
	var all []*pending
	for _, gz := range imgs {
		name := strings.TrimSuffix(filepath.Base(gz), ".img.gz")
		img, err := gunzip(gz, 256<<20)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		p := &pending{name: name, dfs: make(chan e2fsResult, 1)}
		all = append(all, p)
		if live {
			path := filepath.Join(tmp, name)
			writeSparse(t, path, img)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				p.dfs <- runDebugfs(debugfs, path)
				os.Remove(path)
			}()
		} else {
			n, ok := golden[name]
			if !ok {
				t.Errorf("%s: not in %s", name, debugfsGolden)
			}
			p.dfs <- e2fsResult{files: n}
		}
		p.ours = readE2fsImage(t, name, img)
	}
	var ours, dfs, orphans, short int
	var record strings.Builder
	record.WriteString("# Regular files written by debugfs -c -R \"rdump / DIR\" (e2fsprogs 1.47.0) from each image of\n")
	record.WriteString("# ../shared/fixtures/e2fsprogs-tests. Regenerate: go test -run TestE2fsprogsImages -update-debugfs\n")
	for _, p := range all {
		d := <-p.dfs
		fmt.Fprintf(&record, "%s %d\n", p.name, d.files)
		ours += p.ours.files
		orphans += p.ours.orphans
		dfs += d.files
		if p.ours.files < d.files {
			short++
			t.Logf("%s: we read %d files, debugfs %d (%s)", p.name, p.ours.files, d.files, p.ours.err)
		}
	}
	t.Logf("%d images: we read %d files (+%d orphans), debugfs -c rdump %d; %d images with a shortfall",
		len(all), ours, orphans, dfs, short)
	if ours < dfs {
		t.Errorf("we read %d files in all, debugfs %d", ours, dfs)
	}
	if *updateDebugfs {
		if err := os.WriteFile(debugfsGolden, []byte(record.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readGolden reads debugfsGolden: "name count" lines.
func readGolden(t *testing.T) map[string]int {
	b, err := os.ReadFile(debugfsGolden)
	if err != nil {
		t.Fatalf("%v (regenerate with -update-debugfs)", err)
	}
	out := make(map[string]int)
	for _, line := range strings.Split(string(b), "\n") {
		var name string
		var n int
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if _, err := fmt.Sscanf(line, "%s %d", &name, &n); err != nil {
			t.Fatalf("%s: bad line %q", debugfsGolden, line)
		}
		out[name] = n
	}
	return out
}

// gunzip decompresses a file, refusing more than max bytes.
func gunzip(path string, max int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(zr, max+1))
	if int64(len(b)) > max {
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	return b, err
}

// readE2fsImage opens and walks one image with our reader, failing the test
// on a panic, a timeout or too much allocation.
func readE2fsImage(t *testing.T, name string, img []byte) e2fsResult {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan e2fsResult, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s: panic: %v", name, r)
				done <- e2fsResult{err: "panic"}
			}
		}()
		var res e2fsResult
		for _, mode := range []JournalMode{OnDisk, Auto} {
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{Journal: mode})
			if err != nil {
				res.err = err.Error()
				break
			}
			if mode == Auto {
				// The replayed view is walked too where there is one;
				// counts come from the on-disk view, as debugfs -c reads.
				if f.Info().View == ViewReplayed {
					walk(f, true, e2fsMaxFile)
				}
				break
			}
			got, errs := walk(f, true, e2fsMaxFile)
			for _, w := range got {
				if !w.st.Mode.IsRegular() {
					continue
				}
				if w.orphan {
					res.orphans++
				} else if w.sum != "" {
					res.files++
				}
			}
			if len(errs) > 0 {
				res.err = errs[0].Error()
			}
		}
		done <- res
	}()
	select {
	case r := <-done:
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > e2fsMaxAlloc {
			t.Errorf("%s: allocated %d MB", name, a>>20)
		}
		return r
	case <-time.After(e2fsTimeout):
		t.Errorf("%s: no answer within %v", name, e2fsTimeout)
		return e2fsResult{err: "timeout"}
	}
}

// runDebugfs dumps the image's tree with debugfs -c rdump and counts the
// regular files written.
func runDebugfs(debugfs, img string) e2fsResult {
	out := img + ".out"
	if err := os.Mkdir(out, 0o755); err != nil {
		return e2fsResult{err: err.Error()}
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sh := `trap "" XFSZ; ulimit -f 131072; exec "$@"`
	cmd := exec.CommandContext(ctx, "sh", "-c", sh, "sh", debugfs, "-c", "-R", "rdump / "+out, img)
	cmd.Run() // it fails on damaged images (and dies of SIGFPE on one): count what it wrote
	n := 0
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return e2fsResult{files: n}
}
