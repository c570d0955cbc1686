//go:build linux

package ctar

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/fs/fstest"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestFormats reads the formats GNU tar writes besides vzdump's (pax with
// GNU sparse 1.0): old GNU and GNU (././@LongLink names, 'S' sparse
// members with extension blocks), and pax with sparse formats 0.0 and
// 0.1. Each archive of the same tree (long names and link targets, sparse
// files, hard links) must give it back (fs/fstest).
func TestFormats(t *testing.T) {
	tarBin := testutil.RequireTool(t, "tar")
	_, src := tree(t, testimg.ContainerOptions{Files: 250, Seed: 31, Text: true, MaxSize: 20000})
	// a sparse file of many regions: old GNU sparse needs extension blocks
	f, err := os.Create(filepath.Join(src, "many-holes"))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 40; i++ {
		f.WriteAt([]byte("region"), i*64<<10)
	}
	f.Truncate(41 * 64 << 10)
	f.Close()
	for _, tc := range []struct {
		name  string
		args  []string
		xattr bool
	}{
		{"gnu", []string{"--format=gnu"}, false},
		{"oldgnu", []string{"--format=oldgnu"}, false},
		{"pax-sparse-0.0", []string{"--format=posix", "--sparse-version=0.0", "--acls", "--xattrs", "--xattrs-include=user.*", "--xattrs-include=security.capability"}, true},
		{"pax-sparse-0.1", []string{"--format=posix", "--sparse-version=0.1", "--acls", "--xattrs", "--xattrs-include=user.*", "--xattrs-include=security.capability"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arc := filepath.Join(t.TempDir(), "a.tar")
			args := append([]string{"-cf", arc, "--sparse", "--numeric-owner", "-C", src}, tc.args...)
			args = append(args, ".")
			if out, err := exec.Command(tarBin, args...).CombinedOutput(); err != nil {
				t.Fatalf("tar %v: %v\n%s", args, err, out)
			}
			fs := openTar(t, arc, nil)
			opt := fstest.Options{NoXattrs: !tc.xattr, SkipTestFS: true}
			if !tc.xattr {
				opt.MtimeGranularity = time.Second // GNU headers keep seconds
			}
			fstest.Check(t, fs, src, opt)
		})
	}
}
