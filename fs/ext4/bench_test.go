//go:build linux

package ext4

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/vzsalvage/vzsalvage/fs"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

var (
	benchOnce sync.Once
	benchImg  string
	benchDir  string
)

// benchImage builds (once) an ext4 image holding 3,000 small files (0-16
// KiB) in 30 directories.
func benchImage(b *testing.B) string {
	benchOnce.Do(func() {
		d, err := os.MkdirTemp("", "ext4bench")
		if err != nil {
			b.Fatal(err)
		}
		tempDirs = append(tempDirs, d)
		src := filepath.Join(d, "src")
		rng := rand.New(rand.NewPCG(8, 9))
		for i := range 3000 {
			p := filepath.Join(src, fmt.Sprintf("d%02d/f%04d", i%30, i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			data := make([]byte, rng.IntN(16<<10))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		benchImg = filepath.Join(d, "img")
		mkfs(b, src, benchImg, "128M", "-t", "ext4", "-b", "4096")
		os.RemoveAll(src)
		benchDir = d
	})
	if benchImg == "" {
		b.Fatal("bench image not built")
	}
	return benchImg
}

// BenchmarkCopyTree copies every file of a 3,000-file image out to a
// directory, with our reader and with debugfs -c rdump (the script
// scripts/bench-ext4.sh prints the ratio). Both set modes and times.
func BenchmarkCopyTree(b *testing.B) {
	img := benchImage(b)
	b.Run("vzsalvage", func(b *testing.B) {
		var bytes int64
		for i := 0; b.Loop(); i++ {
			out := filepath.Join(b.TempDir(), "out")
			fh, err := os.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			st, _ := fh.Stat()
			f, err := Open(fh, st.Size(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := copyOut(f, f.Root(), out, make([]byte, 1<<20))
			if err != nil {
				b.Fatal(err)
			}
			bytes = n
			fh.Close()
		}
		b.SetBytes(bytes)
	})
	b.Run("debugfs", func(b *testing.B) {
		for b.Loop() {
			out := filepath.Join(b.TempDir(), "out")
			os.Mkdir(out, 0o755)
			testutil.Run(b, "debugfs", "-c", "-R", "rdump / "+out, img)
		}
	})
}

// umask is the process's file creation mask.
var umask = func() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}()

// copyOut copies the tree under dir node n to path out (a minimal
// test-only copy: directories, files, symlinks, modes and times).
func copyOut(f *FS, n fs.Node, out string, buf []byte) (int64, error) {
	if err := os.Mkdir(out, 0o755); err != nil {
		return 0, err
	}
	ents, err := f.ReadDir(n)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, e := range ents {
		p := filepath.Join(out, e.Name)
		st, err := f.Stat(e.Node)
		if err != nil {
			return total, err
		}
		switch {
		case st.Mode.IsDir():
			c, err := copyOut(f, e.Node, p, buf)
			if err != nil {
				return total, err
			}
			total += c
		case st.Mode.IsRegular():
			fl, err := f.Open(e.Node)
			if err != nil {
				return total, err
			}
			// Raw system calls: os.OpenFile would also try to register
			// each file with the network poller.
			fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC|syscall.O_CLOEXEC, uint32(st.Mode.Perm()))
			if err != nil {
				return total, err
			}
			for off := int64(0); off < fl.Size(); {
				k, err := fl.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					syscall.Close(fd)
					return total, err
				}
				for w := buf[:k]; len(w) > 0; {
					c, err := syscall.Write(fd, w)
					if err != nil {
						syscall.Close(fd)
						return total, err
					}
					w = w[c:]
				}
				off += int64(k)
			}
			total += fl.Size()
			if st.Mode.Perm()&umask != 0 { // else open set it already
				syscall.Fchmod(fd, uint32(st.Mode.Perm()))
			}
			syscall.Close(fd)
			os.Chtimes(p, st.Atime, st.Mtime)
			continue
		case st.Mode&os.ModeSymlink != 0:
			t, err := f.ReadLink(e.Node)
			if err != nil {
				return total, err
			}
			os.Symlink(t, p)
			continue
		}
		os.Chmod(p, st.Mode.Perm())
		os.Chtimes(p, st.Atime, st.Mtime)
	}
	return total, nil
}

// BenchmarkWalkRead walks the same image and reads every file into memory,
// without writing anything: the reader's own cost.
func BenchmarkWalkRead(b *testing.B) {
	img := benchImage(b)
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	buf := make([]byte, 1<<20)
	var total int64
	for b.Loop() {
		f, err := Open(fh, st.Size(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		total = readTreeAll(b, f, f.Root(), buf)
	}
	b.SetBytes(total)
}

// readTreeAll stats and reads every file under directory n.
func readTreeAll(b *testing.B, f *FS, n fs.Node, buf []byte) int64 {
	ents, err := f.ReadDir(n)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, e := range ents {
		st, err := f.Stat(e.Node)
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case st.Mode.IsDir():
			total += readTreeAll(b, f, e.Node, buf)
		case st.Mode.IsRegular():
			fl, err := f.Open(e.Node)
			if err != nil {
				b.Fatal(err)
			}
			k, _ := fl.ReadAt(buf, 0)
			total += int64(k)
		}
	}
	return total
}
