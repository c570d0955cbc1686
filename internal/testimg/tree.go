// Package testimg builds realistic test inputs with the real tools: source
// trees, disk images (sgdisk + mke2fs -d, mkfs.xfs, an efidisk), VMA
// archives of them (our Writer, with QEMU's out-of-order cluster runs) and
// their compressed forms (the zstd, gzip and lzop CLIs, as vzdump calls them).
package testimg

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TreeOptions shape a generated source tree.
type TreeOptions struct {
	Files int   // number of regular files (default 200)
	Seed  int64 // content seed
	// Big adds a few multi-MiB files and a sparse file.
	Big bool
}

// Tree writes a deterministic, realistic tree under dir: nested
// directories, text and binary files of varied sizes (mostly small, like a
// root filesystem), empty files, symlinks (short and long targets), hard
// links, and with opt.Big a few large and sparse files. It returns the
// relative paths of the regular files.
func Tree(t testing.TB, dir string, opt TreeOptions) []string {
	t.Helper()
	if opt.Files == 0 {
		opt.Files = 200
	}
	rng := rand.New(rand.NewSource(opt.Seed))
	dirs := []string{"."}
	for i := 0; i < opt.Files/20+3; i++ {
		parent := dirs[rng.Intn(len(dirs))]
		d := filepath.Join(parent, fmt.Sprintf("dir%03d", i))
		dirs = append(dirs, d)
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	words := []string{"backup", "proxmox", "cluster", "volume", "inode", "extent", "journal", "config",
		"server", "mysql", "redis", "nginx", "vocabulary", "word", "user", "the", "a", "of", "and", "data"}
	var files []string
	for i := 0; i < opt.Files; i++ {
		rel := filepath.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("file%05d%s", i, []string{".txt", ".conf", ".bin", ".log", ""}[rng.Intn(5)]))
		var size int
		switch r := rng.Intn(100); {
		case r < 5:
			size = 0
		case r < 70:
			size = 1 + rng.Intn(4096)
		case r < 95:
			size = 4096 + rng.Intn(60000)
		default:
			size = 65536 + rng.Intn(700000)
		}
		b := make([]byte, size)
		if rng.Intn(3) == 0 {
			rng.Read(b)
		} else {
			p := 0
			for p < size {
				w := words[rng.Intn(len(words))]
				if rng.Intn(12) == 0 {
					w += "\n"
				} else {
					w += " "
				}
				p += copy(b[p:], w)
			}
		}
		must(t, os.WriteFile(filepath.Join(dir, rel), b, os.FileMode(0o600|rng.Intn(0o200)<<1)&0o755|0o400))
		files = append(files, rel)
	}
	if opt.Big {
		for i := 0; i < 3; i++ {
			rel := fmt.Sprintf("big%d.bin", i)
			b := make([]byte, (2+i)<<20)
			rng.Read(b[:len(b)/2]) // half random, half text-like zeros
			for j := len(b) / 2; j < len(b); j++ {
				b[j] = byte('a' + j%26)
			}
			must(t, os.WriteFile(filepath.Join(dir, rel), b, 0o644))
			files = append(files, rel)
		}
		// sparse: data, a 5 MiB hole, data
		f, err := os.Create(filepath.Join(dir, "sparse.img"))
		must(t, err)
		_, err = f.Write([]byte("start of a sparse file\n"))
		must(t, err)
		_, err = f.WriteAt([]byte("end of a sparse file\n"), 5<<20)
		must(t, err)
		must(t, f.Close())
		files = append(files, "sparse.img")
	}
	// links
	if len(files) > 2 {
		must(t, os.Symlink(files[1], filepath.Join(dir, "link-short")))
		long := filepath.Join(dirs[len(dirs)-1], "..", "x", string(make([]byte, 0)))
		for len(long) < 100 {
			long += "/longer-target-component"
		}
		must(t, os.Symlink(long, filepath.Join(dir, "link-long")))
		must(t, os.Link(filepath.Join(dir, files[2]), filepath.Join(dir, "hardlink-to-2")))
	}
	return files
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
