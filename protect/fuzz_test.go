package protect

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// tinySidecar writes a small valid sidecar (one device of 3 clusters, one
// segment of one chunk) and returns its bytes.
func tinySidecar(t testing.TB) []byte {
	p := filepath.Join(t.TempDir(), "a.vzsalvage")
	sw, err := createSidecar(p, Version)
	if err != nil {
		t.Fatal(err)
	}
	par := Parity{Code: codeName, DataShards: 2, ParityShards: 1, ShardSize: 64, Stripes: 1, MinStripes: 1}
	s := par.segment(100, 0)
	sw.record(recCluster, clusterKey(1, 0), encodePage(nil, []uint64{0, 5, 0}))
	sw.record(recChunks, 0, appendUint64(nil, 42))
	sw.record(recParity, 0, make([]byte, par.parityLen(s)))
	sum := sha256.Sum256(appendUint64(nil, 42))
	h := &Header{Format: "vzsalvage-sidecar", Version: Version, Archive: ArchiveInfo{Size: 100, ChunksSHA256: hex.EncodeToString(sum[:])},
		VMA:      VMAInfo{Devices: []DeviceInfo{{ID: 1, Name: "drive-scsi0", Size: 3 * clusterSize}}},
		Clusters: ClusterInfo{Hash: "xxh64", Size: clusterSize, Page: pageClusters}, Chunks: ChunkInfo{Hash: "xxh64", Size: par.ShardSize}, Parity: par}
	if err := sw.finish(h); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpenSidecar: a sidecar is input too (it may be damaged): opening and
// reading it must fail cleanly, never panic or allocate without bound.
func FuzzOpenSidecar(f *testing.F) {
	f.Add(tinySidecar(f))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "s.vzsalvage")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		sc, err := OpenSidecar(p)
		if err != nil {
			return
		}
		defer sc.Close()
		for _, d := range sc.Header.VMA.Devices {
			n := int(min(pageClusters, (d.Size+clusterSize-1)/clusterSize))
			sc.clusterPage(uint8(d.ID), 0, n)
		}
		par := sc.Header.Parity
		if sc.Header.Archive.Size > 0 {
			s := par.segment(sc.Header.Archive.Size, 0)
			sc.chunkHashes(0, s.shards)
			sc.parity(0, par.parityLen(s))
		}
	})
}

// FuzzDecodePage: any page record decodes or fails cleanly.
func FuzzDecodePage(f *testing.F) {
	f.Add(encodePage(nil, []uint64{0, 1, 2, 0}), 4)
	f.Add(encodePage(nil, []uint64{0, 0}), 2)
	f.Add(encodePage(nil, []uint64{9, 8}), 2)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > pageClusters {
			return
		}
		hs, err := decodePage(b, n)
		if err == nil && len(hs) != n {
			t.Fatalf("%d hashes for %d clusters", len(hs), n)
		}
	})
}
