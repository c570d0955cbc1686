package vma

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// benchStream builds an uncompressed VMA stream of a 64 MiB device: a
// quarter random clusters, a quarter text, half zero, written in order.
func benchStream(b *testing.B) []byte {
	b.Helper()
	const size = 64 << 20
	h := &Header{Ctime: time.Unix(1734000000, 0), Devices: []Device{{ID: 1, Name: "drive-scsi0", Size: size}}}
	var out bytes.Buffer
	w, err := NewWriter(&out, h)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, ClusterSize)
	for c := uint32(0); c < size/ClusterSize; c++ {
		switch c % 4 {
		case 0:
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
		case 1:
			for i := range buf {
				buf[i] = "vzsalvage bench "[i%16]
			}
		default:
			clear(buf)
		}
		if err := w.WriteCluster(1, c, buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkReader reads a clean stream, strict and salvaging: the VMA
// layer's own cost, without a codec.
func BenchmarkReader(b *testing.B) {
	stream := benchStream(b)
	for _, salvage := range []bool{false, true} {
		name := map[bool]string{false: "strict", true: "salvage"}[salvage]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(stream), Options{Salvage: salvage})
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := r.Next(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
