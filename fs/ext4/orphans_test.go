//go:build linux

package ext4

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestOrphansE2fsprogs compares Orphans with what e2fsck connects to
// /lost+found in e2fsprogs' tests (their expect.1), and checks that inodes
// on the orphan list are not offered.
func TestOrphansE2fsprogs(t *testing.T) {
	for _, c := range []struct {
		image     string
		want      []fs.Node // e2fsck: "Unattached inode N" / "Unconnected directory inode N"
		forbidden []fs.Node
	}{
		// e2fsck also reconnects 13, which has one link but a deletion
		// time and a clear bitmap bit: we trust the bitmap there.
		{"f_lpf", []fs.Node{14, 15}, nil},
		{"f_reconnect", []fs.Node{12, 13, 14}, nil},
		{"f_lpf2", []fs.Node{12, 13}, nil},
		{"f_orphan_dotdot_ft", []fs.Node{13, 14, 15}, nil},
		{"f_recnect_bad", []fs.Node{13}, nil},
		{"f_dir_bad_csum", []fs.Node{19}, nil},
		{"f_imagic", []fs.Node{12, 14}, nil},
		// "Clearing orphaned inode 13..17": on the orphan list, deleted.
		{"f_orphan", nil, []fs.Node{13, 14, 15, 16, 17}},
	} {
		t.Run(c.image, func(t *testing.T) {
			img, err := gunzip(testutil.Fixture(t, filepath.Join("e2fsprogs-tests", c.image+".img.gz")), 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(bytes.NewReader(img), int64(len(img)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Orphans()
			if err != nil {
				t.Error(err)
			}
			for _, n := range c.want {
				if !slices.Contains(got, n) {
					t.Errorf("Orphans() = %v, missing %d", got, n)
				}
			}
			for _, n := range c.forbidden {
				if slices.Contains(got, n) {
					t.Errorf("Orphans() = %v offers orphan-list inode %d", got, n)
				}
			}
		})
	}
}

// TestOrphansUnlinked unlinks a directory and a file with debugfs (their
// inodes stay allocated): Orphans returns exactly those two, and the lost
// subtree reads back intact.
func TestOrphansUnlinked(t *testing.T) {
	src, tree := liteSource.get(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, src, img, "32M", "-t", "ext4")
	f := openImage(t, img, Options{})
	dir := lookup(t, f, "/dirs/a")
	file := lookup(t, f, "/small/f007")
	testutil.Run(t, "debugfs", "-w", "-R", "unlink /dirs/a", img)
	testutil.Run(t, "debugfs", "-w", "-R", "unlink /small/f007", img)

	f = openImage(t, img, Options{})
	got, err := f.Orphans()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []fs.Node{dir, file}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Orphans() = %v, want %v", got, want)
	}
	w, errs := walk(f, true, 1<<30)
	for _, e := range errs {
		t.Error(e)
	}
	if g := w["/#lost/#"+itoa(uint64(file))]; g == nil || g.sum != tree["/small/f007"].sum {
		t.Error("unlinked file not recovered")
	}
	if g := w["/#lost/#"+itoa(uint64(dir))+"/b/c/d/deep.txt"]; g == nil || g.sum != tree["/dirs/a/b/c/d/deep.txt"].sum {
		t.Error("unlinked directory's subtree not recovered")
	}
}

func itoa(n uint64) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}
