package ctar

import (
	"archive/tar"
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// rootfsLike writes a tar stream of n members shaped like a container's
// root filesystem as GNU tar --format=posix writes it: directories of a few
// dozen files, each file with a pax header carrying its times, some with
// xattrs, a few symlinks and hard links. (A benchmark's input: verdicts
// are checked on GNU tar's own archives.)
func rootfsLike(tb testing.TB, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	base := time.Date(2025, 11, 1, 3, 0, 0, 123456789, time.UTC)
	body := bytes.Repeat([]byte("x"), 600)
	dir := ""
	for i := 0; i < n; i++ {
		h := &tar.Header{Format: tar.FormatPAX, Mode: 0o644, ModTime: base.Add(time.Duration(i) * time.Second),
			AccessTime: base, ChangeTime: base}
		switch {
		case i%40 == 0:
			dir = fmt.Sprintf("./usr/share/doc/package-%05d/", i/40)
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, dir, 0o755
		case i%97 == 1:
			h.Typeflag, h.Name, h.Linkname = tar.TypeSymlink, fmt.Sprintf("%slink%05d", dir, i), "../../../lib/x86_64-linux-gnu/libexample.so.1"
		case i%53 == 2:
			h.Typeflag, h.Name, h.Linkname = tar.TypeLink, fmt.Sprintf("%shard%05d", dir, i), fmt.Sprintf("%scopyright-%05d", dir, i-1)
		default:
			h.Typeflag, h.Name, h.Size = tar.TypeReg, fmt.Sprintf("%scopyright-%05d", dir, i), int64(len(body))
			if i%7 == 0 {
				h.PAXRecords = map[string]string{"SCHILY.xattr.user.origin": "benchmark"}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkIndexMemory reports what the index of a container's stream and
// its tree cost per member (B/member), and the scan's speed.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 200_000
	stream := rootfsLike(b, n)
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	var index, tree uint64
	for range b.N {
		h0 := heapInUse()
		x, err := Scan(&spanReader{Reader: bytes.NewReader(stream)}, Options{})
		if err != nil || len(x.Members) != n {
			b.Fatalf("%d members, %v", len(x.Members), err)
		}
		h1 := heapInUse()
		f := NewFS(x, nil)
		h2 := heapInUse()
		index, tree = h1-h0, h2-h1
		runtime.KeepAlive(f)
	}
	b.ReportMetric(float64(index)/n, "index-B/member")
	b.ReportMetric(float64(tree)/n, "tree-B/member")
}
