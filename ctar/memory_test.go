//go:build linux

package ctar

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestIndexMemoryGNU measures what the index of a container's tar costs
// live per member (HeapAlloc after GC, before and after Scan; and what the
// tree NewFS builds adds), on archives GNU tar writes as vzdump does
// (--format=posix --numeric-owner --sparse --xattrs --acls), and with owner
// names (the same without --numeric-owner). Set VZSALVAGE_INDEX_MEMBERS to
// the number of files (e.g. 1000000; every member name is 56 bytes);
// VZSALVAGE_INDEX_DIR to keep the tree and the tars there between runs.
func TestIndexMemoryGNU(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VZSALVAGE_INDEX_MEMBERS"))
	if n <= 0 {
		t.Skip("VZSALVAGE_INDEX_MEMBERS not set")
	}
	testutil.RequireTool(t, "tar")
	dir := os.Getenv("VZSALVAGE_INDEX_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	src := filepath.Join(dir, fmt.Sprintf("root-%d", n))
	if _, err := os.Stat(src); err != nil {
		tmp := src + ".tmp"
		os.RemoveAll(tmp)
		for i := range n {
			// "./" + 54 bytes: usr/share/doc/pkg-0000/file-0000000-abcdefghijklmn.txt
			d := filepath.Join(tmp, "usr/share/doc", fmt.Sprintf("pkg-%04d", i/1000))
			if i%1000 == 0 {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			body := []byte(fmt.Sprintf("file %d\n", i))
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("file-%07d-abcdefghijklmn.txt", i)), body[:i%len(body)], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(tmp, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, owners := range []bool{false, true} {
		name := filepath.Join(dir, fmt.Sprintf("ct-%d-owners-%v.tar", n, owners))
		if _, err := os.Stat(name); err != nil {
			args := []string{"--format=posix", "--sparse", "--xattrs", "--acls", "-cf", name + ".tmp", "-C", src, "."}
			if !owners {
				args = append([]string{"--numeric-owner"}, args...)
			}
			if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v: %s", err, out)
			}
			if err := os.Rename(name+".tmp", name); err != nil {
				t.Fatal(err)
			}
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		h0 := heapInUse()
		x, err := Scan(&spanReader{Reader: bufio.NewReaderSize(f, 1<<20)}, Options{})
		f.Close()
		if err != nil || !x.Intact() || len(x.Members) < n {
			t.Fatalf("%s: %d members, %v", name, len(x.Members), err)
		}
		h1 := heapInUse()
		fsys := NewFS(x, nil)
		h2 := heapInUse()
		runtime.KeepAlive(fsys)
		var names int
		for _, m := range x.Members {
			names += len(m.Name)
		}
		members := float64(len(x.Members))
		u, g := x.Members[len(x.Members)-1].Owners()
		t.Logf("owner names %v (%q %q): %d members, names %.1f B each: index %.1f B/member live (%.1f beyond the name bytes), tree %.1f B/member",
			owners, u, g, len(x.Members), float64(names)/members, float64(h1-h0)/members, float64(h1-h0-uint64(names))/members, float64(h2-h1)/members)
	}
}
