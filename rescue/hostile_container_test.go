package rescue

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// hostileContainer makes, with GNU tar (-P keeps what it would strip) and
// zstd, a container backup whose members try to write outside the
// directory they are restored into: names with ".." and a leading "/",
// symlinks to outside (absolute and relative) followed by members written
// through them, hard links to a host path and to a name with "..", a
// device node and a setuid file. outside is the directory they aim at.
func hostileContainer(t *testing.T, dir, outside string) string {
	t.Helper()
	tarBin := testutil.RequireTool(t, "tar")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(tarBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("tar %v: %v\n%s", args, err, out)
		}
	}
	s1, s2, s3 := filepath.Join(dir, "s1"), filepath.Join(dir, "s2"), filepath.Join(dir, "s3")
	for _, d := range []string{s1, filepath.Join(s2, "link"), filepath.Join(s2, "rel"), s3, filepath.Join(s1, "d")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(s1, "a"), []byte("evil\n"), 0o644))
	must(t, os.Link(filepath.Join(s1, "a"), filepath.Join(s1, "b")))
	must(t, os.WriteFile(filepath.Join(s1, "t"), []byte("target\n"), 0o644))
	must(t, os.Link(filepath.Join(s1, "t"), filepath.Join(s1, "t2")))
	must(t, os.Symlink(outside, filepath.Join(s1, "link")))
	must(t, os.Symlink("../../../../../../../../"+outside, filepath.Join(s1, "rel")))
	must(t, os.WriteFile(filepath.Join(s1, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(filepath.Join(s1, "suid"), 0o755|os.ModeSetuid|os.ModeSetgid))
	names := []string{"a", "b", "t", "t2", "link", "rel", "suid", "d"}
	if os.Geteuid() == 0 {
		testutil.Run(t, "mknod", filepath.Join(s1, "null"), "c", "1", "3")
		names = append(names, "null")
	}
	must(t, os.WriteFile(filepath.Join(s2, "link", "pwned"), []byte("through a symlink\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(s2, "rel", "pwned"), []byte("through a relative symlink\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(s3, "f"), []byte("f\n"), 0o644))
	arc := filepath.Join(dir, "h.tar")
	run(append([]string{"-cPf", arc, "-C", s1, "--transform=s,^a$,../../../escape-a,", "--transform=s,^b$," + outside + "/abs-b,",
		"--transform=s,^t$," + outside + "/hard-target,RSh"}, names...)...)
	run("-rPf", arc, "-C", s2, "link/pwned", "rel/pwned")
	run("-rPf", arc, "-C", s3, "--transform=s,^f$,"+outside+"/abs-file,", "f")
	run("-rPf", arc, "-C", s3, "--transform=s,^f$,../../../x,", "f")
	run("-rPf", arc, "-C", s3, "--transform=s,^f$,d/../../../y,", "f")
	zst := filepath.Join(dir, "vzdump-lxc-666-2025_12_15-03_00_03.tar.zst")
	testutil.Run(t, "zstd", "-q", arc, "-o", zst)
	return zst
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// listTree returns every path under dir.
func listTree(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestHostileContainer: restoring the hostile archive (as root, where the
// test runs as root) writes nothing outside the output directory, follows
// no symlink, recreates no device node and no setuid/setgid bit.
func TestHostileContainer(t *testing.T) {
	testutil.RequireTool(t, "zstd")
	top := t.TempDir()
	outside := filepath.Join(top, "outside")
	must(t, os.Mkdir(outside, 0o755))
	arc := hostileContainer(t, filepath.Join(top, "src"), outside)
	work := filepath.Join(top, "a", "b", "c")
	must(t, os.MkdirAll(work, 0o755))
	before := listTree(t, top)

	out := filepath.Join(work, "rescue")
	rep, err := Run(arc, out, Options{Owners: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := extract.Extract(arc, filepath.Join(work, "extract"), extract.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range listTree(t, top) {
		if !slices.Contains(before, p) && !isUnder(p, work) {
			t.Errorf("written outside the output: %s", p)
		}
	}
	for _, root := range []string{filepath.Join(out, "files", "rootfs"), filepath.Join(work, "extract", extract.RootfsID)} {
		if _, err := os.Lstat(filepath.Join(root, "null")); err == nil {
			t.Errorf("%s: device node recreated", root)
		}
		if st, err := os.Lstat(filepath.Join(root, "suid")); err != nil || st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("%s: suid: %v %v", root, st.Mode(), err)
		}
		if st, err := os.Lstat(filepath.Join(root, "link")); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: link is not kept as a symlink: %v", root, err)
		}
		// names that climbed are placed inside, without the climb, or not at all
		if b, err := os.ReadFile(filepath.Join(root, outside, "abs-file")); err != nil || string(b) != "f\n" {
			t.Errorf("%s: absolute name not placed inside: %q %v", root, b, err)
		}
	}
	if len(rep.Volumes) != 1 || len(rep.Volumes[0].Notes) == 0 {
		t.Errorf("refused members not noted: %+v", rep.Volumes)
	}
	t.Logf("notes: %q", rep.Volumes[0].Notes)
	entries, _ := os.ReadDir(outside)
	if len(entries) > 0 {
		t.Errorf("%s holds %v", outside, entries)
	}
}

func isUnder(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && (len(rel) < 3 || rel[:3] != "../")
}
