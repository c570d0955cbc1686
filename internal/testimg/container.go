//go:build linux

package testimg

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// ContainerOptions shape a generated container root.
type ContainerOptions struct {
	Files int   // regular files (default 2000)
	Seed  int64 // everything, names, content, modes and times, follows from it
	// Text makes file content compressible text (no random bytes).
	Text bool
	// MaxSize caps the size of each file's data (0: up to 440 KB), for
	// archives small enough to check in.
	MaxSize int
}

// PctConf is the pct.conf of the test container.
const PctConf = `arch: amd64
cores: 2
hostname: ct101
memory: 1024
net0: name=eth0,bridge=vmbr0,ip=dhcp,type=veth
ostype: debian
rootfs: local-lvm:vm-101-disk-0,size=8G
swap: 512
unprivileged: 1
`

// ContainerTree writes a deterministic root filesystem under dir, like a
// small Debian container's: nested directories, files of varied sizes and
// modes (setuid and setgid among them), sparse files, hard links across
// directories, symlinks (relative, absolute, dangling, to directories, with
// targets over 100 bytes), names over 100 bytes and with spaces and UTF-8,
// user.* xattrs (setfattr), access and default ACLs (setfacl), a FIFO, and
// fixed modification times. As root it also sets owners and makes a device
// node and a security.capability. It returns the relative paths of the
// regular files.
func ContainerTree(t testing.TB, dir string, opt ContainerOptions) []string {
	t.Helper()
	if opt.Files == 0 {
		opt.Files = 2000
	}
	root := os.Geteuid() == 0
	rng := rand.New(rand.NewSource(opt.Seed))
	top := []string{"etc", "usr/bin", "usr/lib/x86_64-linux-gnu", "usr/share/doc", "var/log", "var/lib/dpkg/info", "home/user", "root", "opt/app", "srv/www"}
	dirs := append([]string(nil), top...)
	for i := 0; i < opt.Files/25+5; i++ {
		d := filepath.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("d%03d", i))
		if i%17 == 3 {
			d += " with space ü"
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	text, binary := contentModel(rng)
	var files []string
	for i := 0; i < opt.Files; i++ {
		name := fmt.Sprintf("f%05d%s", i, []string{".txt", ".conf", ".so", ".log", "", ".py"}[rng.Intn(6)])
		if i%211 == 7 {
			name = strings.Repeat("long-name-", 11) + name // over 100 bytes
		}
		rel := filepath.Join(dirs[rng.Intn(len(dirs))], name)
		var size int
		switch r := rng.Intn(100); {
		case r < 5:
			size = 0
		case r < 75:
			size = 1 + rng.Intn(3000)
		case r < 97:
			size = 3000 + rng.Intn(40000)
		default:
			size = 40000 + rng.Intn(400000)
		}
		if opt.MaxSize > 0 {
			size = min(size, opt.MaxSize)
		}
		var b []byte
		switch r := rng.Intn(10); {
		case r == 0 && !opt.Text:
			b = make([]byte, size) // compressed or encrypted data
			rng.Read(b)
		case r < 4 && !opt.Text:
			b = binary(size)
		default:
			b = text(size)
		}
		mode := []os.FileMode{0o644, 0o644, 0o644, 0o755, 0o600, 0o640, 0o444}[rng.Intn(7)]
		p := filepath.Join(dir, rel)
		must(t, os.WriteFile(p, b, 0o600))
		must(t, os.Chmod(p, mode))
		files = append(files, rel)
	}
	// setuid and setgid programs
	for i, m := range []os.FileMode{0o755 | os.ModeSetuid, 0o755 | os.ModeSetgid} {
		p := filepath.Join(dir, "usr/bin", fmt.Sprintf("suid%d", i))
		must(t, os.WriteFile(p, []byte("#!/bin/sh\necho privileged\n"), 0o755))
		must(t, os.Chmod(p, m))
		files = append(files, filepath.Join("usr/bin", fmt.Sprintf("suid%d", i)))
	}
	// sparse files: data, holes, data, a hole at the end
	for i := 0; i < 3; i++ {
		rel := fmt.Sprintf("var/lib/sparse%d.img", i)
		f, err := os.Create(filepath.Join(dir, rel))
		must(t, err)
		for k := 0; k < 3+i; k++ {
			b := make([]byte, 4096*(1+rng.Intn(4)))
			if opt.MaxSize > 0 {
				b = text(min(len(b), opt.MaxSize))
			} else {
				rng.Read(b)
			}
			_, err = f.WriteAt(b, int64(k)*(1<<20)+int64(rng.Intn(64))*4096)
			must(t, err)
		}
		must(t, f.Truncate(int64(4+i)<<20))
		must(t, f.Close())
		files = append(files, rel)
	}
	// hard links across directories
	for i := 0; i < len(files)/50; i++ {
		src := files[rng.Intn(len(files))]
		dst := filepath.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("hl%04d", i))
		must(t, os.Link(filepath.Join(dir, src), filepath.Join(dir, dst)))
	}
	// symlinks
	long := strings.Repeat("../", 10) + strings.Repeat("long-target-component/", 6) + "end"
	for i, target := range []string{files[0], "/usr/bin/suid0", "does/not/exist", "../usr", long, "/etc"} {
		must(t, os.Symlink(target, filepath.Join(dir, dirs[rng.Intn(len(dirs))], fmt.Sprintf("sl%d", i))))
	}
	must(t, unix.Mkfifo(filepath.Join(dir, "var/log/fifo"), 0o644))
	if root {
		must(t, unix.Mknod(filepath.Join(dir, "root/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
	// xattrs and ACLs, each set by its tool in one run
	var xa, acl bytes.Buffer
	for i := 0; i < len(files); i += 7 + rng.Intn(20) {
		fmt.Fprintf(&xa, "# file: %s\nuser.origin=\"seed %d\"\nuser.n%d=0x%016x\n\n", attrName(files[i]), opt.Seed, i, rng.Int63())
	}
	for i := 3; i < len(files); i += 30 + rng.Intn(40) {
		fmt.Fprintf(&acl, "# file: %s\nuser::rw-\nuser:1234:r--\ngroup::r--\ngroup:4321:rw-\nmask::rw-\nother::r--\n\n", attrName(files[i]))
	}
	fmt.Fprintf(&acl, "# file: %s\nuser::rwx\ngroup::r-x\nother::r-x\ndefault:user::rwx\ndefault:user:1234:rwx\ndefault:group::r-x\ndefault:mask::rwx\ndefault:other::r-x\n\n", attrName(dirs[len(dirs)-1]))
	runIn(t, dir, &xa, "setfattr", "--restore=-")
	runIn(t, dir, &acl, "setfacl", "--restore=-")
	if root {
		// cap_net_bind_service+ep, as setcap writes it
		must(t, unix.Setxattr(filepath.Join(dir, "usr/bin/suid0"), "security.capability",
			[]byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	}
	// owners (as root) and times, children before their directories
	var all []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != dir {
			all = append(all, p)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(all)))
	base := time.Date(2025, 11, 1, 3, 0, 0, 0, time.UTC).Unix()
	for i, p := range all {
		if root && !strings.Contains(p, "usr/bin/suid") { // chown clears setuid and capabilities
			uid := []int{0, 0, 0, 1000, 33, 100000}[(i*7+int(opt.Seed))%6]
			must(t, os.Lchown(p, uid, uid))
		}
		ts := []unix.Timespec{unix.NsecToTimespec((base + int64(i*977)) * 1e9), unix.NsecToTimespec((base+int64(i*3607))*1e9 + int64(i%1000)*1000)}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	ts := []unix.Timespec{unix.NsecToTimespec(base * 1e9), unix.NsecToTimespec(base * 1e9)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, 0))
	return files
}

// attrName escapes a file name as getfattr and getfacl write it (octal
// escapes for spaces, backslashes and bytes outside printable ASCII).
func attrName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			fmt.Fprintf(&b, "\\%03o", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// contentModel returns generators of file content that compress like a
// root filesystem's: text drawn from a large vocabulary with Zipf's law,
// and machine code of common and rare instruction words with random
// operands. (Text of a handful of words would make every later byte of a
// zstd stream a copy of every earlier one, which no real tree is.)
func contentModel(rng *rand.Rand) (text, binary func(int) []byte) {
	vocab := make([]string, 8000)
	for i := range vocab {
		w := make([]byte, 2+rng.Intn(10))
		for j := range w {
			w[j] = byte('a' + rng.Intn(26))
		}
		vocab[i] = string(w)
	}
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(vocab)-1))
	ops := make([]uint32, 3000)
	for i := range ops {
		ops[i] = rng.Uint32()
	}
	opz := rand.NewZipf(rng, 1.2, 4, uint64(len(ops)-1))
	text = func(size int) []byte {
		b := make([]byte, 0, size+16)
		for len(b) < size {
			b = append(b, vocab[zipf.Uint64()]...)
			switch rng.Intn(14) {
			case 0:
				b = append(b, '\n')
			case 1:
				b = fmt.Appendf(b, " %d, ", rng.Intn(1e6))
			default:
				b = append(b, ' ')
			}
		}
		return b[:size]
	}
	binary = func(size int) []byte {
		b := make([]byte, 0, size+8)
		for len(b) < size {
			op := ops[opz.Uint64()]
			b = append(b, byte(op), byte(op>>8))
			for k := 0; k < int(op>>29); k++ {
				b = append(b, byte(rng.Intn(256)))
			}
		}
		return b[:size]
	}
	return text, binary
}

func runIn(t testing.TB, dir string, stdin *bytes.Buffer, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, name), args...)
	cmd.Dir, cmd.Stdin = dir, stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TarArgs are the arguments vzdump gives GNU tar for a container (after
// "tar cpf -"), less the --directory/source pairs.
var TarArgs = []string{"--totals", "--one-file-system", "-p", "--sparse", "--numeric-owner", "--acls", "--xattrs",
	"--xattrs-include=user.*", "--xattrs-include=security.capability", "--warning=no-file-ignored", "--warning=no-xattr-write"}

// ContainerArchive writes root as vzdump does, through GNU tar with its
// flags, pct.conf first (from a directory of its own), compressed by the
// real CLI for ext (".zst", ".gz", ".lzo" or ""), as
// dir/vzdump-lxc-101-<time>.tar<ext>; it returns the path.
func ContainerArchive(t testing.TB, root, dir, ext, when string) string {
	t.Helper()
	conf := filepath.Join(dir, "conf-"+when)
	must(t, os.MkdirAll(filepath.Join(conf, "etc/vzdump"), 0o755))
	must(t, os.WriteFile(filepath.Join(conf, "etc/vzdump/pct.conf"), []byte(PctConf), 0o644))
	path := filepath.Join(dir, "vzdump-lxc-101-"+when+".tar"+ext)
	out, err := os.Create(path)
	must(t, err)
	defer out.Close()
	args := append([]string{"cpf", "-"}, TarArgs...)
	args = append(args, "--directory="+conf, "./etc/vzdump/pct.conf", "--directory="+root, "./")
	tar := exec.Command(testutil.RequireTool(t, "tar"), args...)
	var stderr bytes.Buffer
	tar.Stderr = &stderr
	argv := Compressors[ext]
	if argv == nil {
		tar.Stdout = out
		if err := tar.Run(); err != nil {
			t.Fatalf("tar: %v\n%s", err, stderr.String())
		}
		return path
	}
	comp := exec.Command(testutil.RequireTool(t, argv[0]), argv[1:]...)
	pipe, err := tar.StdoutPipe()
	must(t, err)
	var cstderr bytes.Buffer // (not tar's: the two write at once)
	comp.Stdin, comp.Stdout, comp.Stderr = pipe, out, &cstderr
	must(t, tar.Start())
	must(t, comp.Start())
	terr, cerr := tar.Wait(), comp.Wait()
	if terr != nil || cerr != nil {
		t.Fatalf("tar | %s: %v %v\n%s%s", argv[0], terr, cerr, stderr.String(), cstderr.String())
	}
	return path
}
