//go:build linux

package fs

import (
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fuzzTree builds a guest tree from bytes, one operation after another:
// directories, files (whose size and layout may lie), symlinks (out of the
// copy, too), more names for nodes already made (aliases, directory
// cycles), owners, modes and extended attributes. outside is a host
// directory the symlinks aim at.
func fuzzTree(b []byte, outside string) *memFS {
	m := newMem()
	dirs := []Node{2}
	nodes := []Node{2}
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	str := func() string {
		n := min(int(next()%24), len(b))
		s := string(b[:n])
		b = b[n:]
		return s
	}
	for ops := 0; len(b) > 0 && ops < 200; ops++ {
		parent := dirs[int(next())%len(dirs)]
		switch next() % 8 {
		case 0:
			dirs = append(dirs, m.dir(parent, str()))
			nodes = append(nodes, dirs[len(dirs)-1])
		case 1, 2:
			name, data := str(), str()
			n := m.file(parent, name, strings.Repeat(data, int(next())+1))
			if c := next(); c&1 != 0 {
				nd := m.nodes[n]
				nd.st.Size = int64(c) << (c % 48) // a size that lies
				nd.layout = &Layout{Data: []Extent{{Logical: 0, Physical: int64(c), Length: nd.st.Size}}}
			}
			nodes = append(nodes, n)
		case 3:
			target := str()
			if next()&1 != 0 {
				target = outside + "/" + target
			}
			nodes = append(nodes, m.symlink(parent, str(), target))
		case 4:
			m.link(parent, str(), nodes[int(next())%len(nodes)])
		case 5:
			nd := m.nodes[nodes[int(next())%len(nodes)]]
			nd.st.Mode = nd.st.Mode.Type() | iofs.FileMode(next())<<4 | iofs.ModeSetuid
			nd.st.UID, nd.st.GID = uint32(next())+1000, uint32(next())+1000
			nd.st.Nlink = uint32(next() % 3)
		case 6:
			nd := m.nodes[nodes[int(next())%len(nodes)]]
			if nd.st.Xattrs == nil {
				nd.st.Xattrs = map[string][]byte{}
			}
			ns := []string{"user.", "trusted.", "security.", "system.posix_acl_access", "security.capability"}[next()%5]
			nd.st.Xattrs[ns+str()] = []byte(str())
		case 7:
			m.add(parent, str(), &memNode{st: Stat{Mode: iofs.ModeNamedPipe | 0o644}})
		}
	}
	return m
}

// FuzzCopy copies fuzzed guest trees out to the host: whatever the tree,
// nothing is written outside the destination, no symlink is followed, the
// budget holds, no temporary file is left, no setuid bit or file
// capability is restored without being asked for.
func FuzzCopy(f *testing.F) {
	f.Add([]byte("\x00\x00\x03etc\x00\x01\x06passwd\x04root\x02\x00\x03\x04evil\x03x\x01\x00\x04\x03bad\x00\x00\x05\x01\x10\x01\x02\x01\x00\x06\x01\x04\x05caps\x01x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		m := fuzzTree(b, outside)
		opt := CopyOptions{Recursive: true, Owners: len(b)%2 == 0, Xattrs: XattrMode(len(b) % 3),
			Budget: &Budget{MaxRead: 1 << 20, MaxWrite: 256 << 10}}
		dest := filepath.Join(base, "out")
		stats, err := Copy(m, 2, "/", dest, opt)
		if err != nil && stats == nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("wrote outside the destination: %v", ents)
		}
		if ents, _ := os.ReadDir(base); len(ents) > 2 {
			t.Fatalf("wrote beside the destination: %v", ents)
		}
		if b := opt.Budget; b.Read > b.MaxRead || b.Written > b.MaxWrite || stats.Bytes > b.MaxWrite {
			t.Fatalf("budget: %+v, %d bytes written", *b, stats.Bytes)
		}
		filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if strings.HasPrefix(info.Name(), ".vzsalvage-") {
				t.Fatalf("left behind: %s", p)
			}
			if info.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
				t.Fatalf("%s: setuid/setgid kept", p)
			}
			if st := info.Sys().(*syscall.Stat_t); st.Mode&syscall.S_IFMT == syscall.S_IFCHR || st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
				t.Fatalf("%s: device node", p)
			}
			buf := make([]byte, 64)
			if _, err := syscall.Getxattr(p, "security.capability", buf); err == nil && !(opt.Owners && opt.Xattrs == XattrsAll) {
				t.Fatalf("%s: file capability restored", p)
			}
			return nil
		})
		// give the test's cleanup a tree it may remove
		filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
}
