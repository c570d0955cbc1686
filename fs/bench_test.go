package fs

import (
	"fmt"
	"path/filepath"
	"testing"
)

// benchTree is 20 directories of 100 files of 4 KiB.
func benchTree() *memFS {
	m := newMem()
	data := string(make([]byte, 4096-1)) + "x"
	for i := range 20 {
		d := m.dir(2, fmt.Sprintf("dir%02d", i))
		for j := range 100 {
			m.file(d, fmt.Sprintf("file%03d", j), data)
		}
	}
	return m
}

func BenchmarkLookup(b *testing.B) {
	m := benchTree()
	for b.Loop() {
		if _, err := Lookup(m, "/dir19/file099"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWalk(b *testing.B) {
	m := benchTree()
	for b.Loop() {
		Walk(m, 2, func(string, *DirEntry, *Stat, error) error { return nil })
	}
}

func BenchmarkCopy(b *testing.B) {
	m := benchTree()
	b.SetBytes(2000 * 4096)
	for b.Loop() {
		if _, err := Copy(m, 2, "/", filepath.Join(b.TempDir(), "out"), CopyOptions{Recursive: true}); err != nil {
			b.Fatal(err)
		}
	}
}
