package protect

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/cespare/xxhash/v2"
)

// Sidecar is an opened sidecar file.
type Sidecar struct {
	Path   string
	Header Header
	// Size is the sidecar file's size.
	Size  int64
	f     *os.File
	index map[recKey]recLoc
}

// SidecarPath returns where the sidecar of an archive is: beside it
// (ARCHIVE.vzsalvage), or in dir when dir is not empty.
func SidecarPath(archive, dir string) string {
	if dir == "" {
		return archive + ".vzsalvage"
	}
	return filepath.Join(dir, filepath.Base(archive)+".vzsalvage")
}

// OpenSidecar opens and checks a sidecar's structure: footer, index and
// header. Records are checked when read.
func OpenSidecar(path string) (*Sidecar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s := &Sidecar{Path: path, f: f}
	if err := s.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Close closes the file.
func (s *Sidecar) Close() error { return s.f.Close() }

func (s *Sidecar) load() error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	s.Size = st.Size()
	if s.Size < preambleSize+footerSize {
		return formatErr("file too short (%d bytes)", s.Size)
	}
	var pre [preambleSize]byte
	if _, err := s.f.ReadAt(pre[:], 0); err != nil {
		return err
	}
	if string(pre[:8]) != magic {
		return formatErr("wrong magic")
	}
	v := binary.LittleEndian.Uint32(pre[8:])
	if v < minVersion || v > Version {
		return formatErr("format version %d (this vzsalvage reads versions %d to %d)", v, minVersion, Version)
	}
	var foot [footerSize]byte
	if _, err := s.f.ReadAt(foot[:], s.Size-footerSize); err != nil {
		return err
	}
	if string(foot[:8]) != footerMagic || xxhash.Sum64(foot[:24]) != binary.LittleEndian.Uint64(foot[24:]) {
		return formatErr("footer damaged (the file may be truncated)")
	}
	ioff, isize := int64(binary.LittleEndian.Uint64(foot[8:])), int64(binary.LittleEndian.Uint64(foot[16:]))
	idx, err := s.readAt(recIndex, 0, recLoc{ioff, isize})
	if err != nil {
		return err
	}
	if len(idx)%indexEntry != 0 {
		return formatErr("index of %d bytes", len(idx))
	}
	s.index = make(map[recKey]recLoc, len(idx)/indexEntry)
	for b := idx; len(b) > 0; b = b[indexEntry:] {
		k := recKey{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint64(b[8:])}
		l := recLoc{int64(binary.LittleEndian.Uint64(b[16:])), int64(binary.LittleEndian.Uint64(b[24:]))}
		if l.off < preambleSize || l.size < recHeadSize+recSumSize || l.off > s.Size || l.size > s.Size-l.off {
			return formatErr("index entry out of the file")
		}
		s.index[k] = l
	}
	js, err := s.record(recHeader, 0)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(js, &s.Header); err != nil {
		return formatErr("header: %v", err)
	}
	if s.Header.Version != int(v) {
		return formatErr("header version %d in a version %d file", s.Header.Version, v)
	}
	return s.Header.check()
}

// check validates the header's numbers before anything is sized by them.
func (h *Header) check() error {
	p := h.Parity
	switch {
	case h.Format != "vzsalvage-sidecar" || h.Version < minVersion || h.Version > Version:
		return formatErr("header format %q version %d", h.Format, h.Version)
	case h.Version == 1 && !isHexSHA256(h.Archive.SHA256):
		return formatErr("archive sha256 %q", h.Archive.SHA256)
	case h.Version >= 2 && !isHexSHA256(h.Archive.ChunksSHA256):
		return formatErr("archive chunks_sha256 %q", h.Archive.ChunksSHA256)
	case h.Archive.Size < 0:
		return formatErr("archive size %d", h.Archive.Size)
	case h.Clusters.Hash != "xxh64" || h.Clusters.Size != clusterSize || h.Clusters.Page != pageClusters:
		return formatErr("cluster hashes %+v", h.Clusters)
	case h.Chunks.Hash != "xxh64" || h.Chunks.Size != p.ShardSize:
		return formatErr("chunk hashes %+v", h.Chunks)
	}
	if err := p.check(); err != nil {
		return err
	}
	if t := h.Tar; t != nil && (t.Members < 0 || t.Members > maxMembers || t.Hash != "xxh64" || t.Page != pageMembers) {
		return formatErr("member hashes %+v", *t)
	}
	for _, d := range h.VMA.Devices {
		if d.ID < 1 || d.ID > 255 || d.Size < 0 || d.Size > 1<<50 {
			return formatErr("device %+v", d)
		}
	}
	return nil
}

// record reads a record and checks its checksum.
func (s *Sidecar) record(typ uint32, key uint64) ([]byte, error) {
	loc, ok := s.index[recKey{typ, key}]
	if !ok {
		return nil, formatErr("record %d/%d missing", typ, key)
	}
	return s.readAt(typ, key, loc)
}

func (s *Sidecar) readAt(typ uint32, key uint64, loc recLoc) ([]byte, error) {
	if loc.size < recHeadSize+recSumSize || loc.size > maxRecord || loc.off < 0 || loc.off > s.Size-loc.size {
		return nil, formatErr("record %d/%d out of the file", typ, key)
	}
	b := make([]byte, loc.size)
	if _, err := s.f.ReadAt(b, loc.off); err != nil && err != io.EOF {
		return nil, err
	}
	head, payload := b[:recHeadSize], b[recHeadSize:len(b)-recSumSize]
	if binary.LittleEndian.Uint32(head) != typ || binary.LittleEndian.Uint64(head[8:]) != key ||
		binary.LittleEndian.Uint64(head[16:]) != uint64(len(payload)) {
		return nil, formatErr("record %d/%d: head does not match the index", typ, key)
	}
	if recordSum(head, payload) != binary.LittleEndian.Uint64(b[len(b)-recSumSize:]) {
		return nil, formatErr("record %d/%d damaged (checksum)", typ, key)
	}
	return payload, nil
}

// clusterPage returns the hashes of page p of a device (0 for a zero
// cluster), n of them.
func (s *Sidecar) clusterPage(dev uint8, p int64, n int) ([]uint64, error) {
	b, err := s.record(recCluster, clusterKey(dev, p))
	if err != nil {
		return nil, err
	}
	return decodePage(b, n)
}

// chunkHashes returns the chunk hashes of segment i.
func (s *Sidecar) chunkHashes(i int64, n int) ([]uint64, error) {
	b, err := s.record(recChunks, uint64(i))
	if err != nil {
		return nil, err
	}
	if len(b) != 8*n {
		return nil, formatErr("segment %d: %d bytes of chunk hashes, want %d", i, len(b), 8*n)
	}
	hs := make([]uint64, n)
	for j := range hs {
		hs[j] = binary.LittleEndian.Uint64(b[8*j:])
	}
	return hs, nil
}

// parity returns the parity of segment i (n bytes).
func (s *Sidecar) parity(i int64, n int) ([]byte, error) {
	b, err := s.record(recParity, uint64(i))
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, formatErr("segment %d: %d bytes of parity, want %d", i, len(b), n)
	}
	return b, nil
}

// encodePage appends the encoding of a page of hashes (0 = zero cluster).
func encodePage(dst []byte, hs []uint64) []byte {
	nz := 0
	for _, h := range hs {
		if h != 0 {
			nz++
		}
	}
	switch nz {
	case 0:
		return append(dst, pageAllZero)
	case len(hs):
		dst = append(dst, pageAllData)
	default:
		dst = append(dst, pageBitmap)
		bm := make([]byte, (len(hs)+7)/8)
		for i, h := range hs {
			if h != 0 {
				bm[i/8] |= 1 << (i % 8)
			}
		}
		dst = append(dst, bm...)
	}
	for _, h := range hs {
		if h != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, h)
		}
	}
	return dst
}

// decodePage decodes a page of n hashes.
func decodePage(b []byte, n int) ([]uint64, error) {
	hs := make([]uint64, n)
	if len(b) == 0 {
		return nil, formatErr("empty cluster page")
	}
	kind, b := b[0], b[1:]
	switch kind {
	case pageAllZero:
		if len(b) != 0 {
			return nil, formatErr("zero cluster page with data")
		}
	case pageAllData:
		if len(b) != 8*n {
			return nil, formatErr("cluster page of %d bytes for %d clusters", len(b), n)
		}
		for i := range hs {
			hs[i] = nonZero(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case pageBitmap:
		nb := (n + 7) / 8
		if len(b) < nb {
			return nil, formatErr("cluster page bitmap short")
		}
		bm, hb := b[:nb], b[nb:]
		cnt := 0
		for _, x := range bm {
			cnt += bits.OnesCount8(x)
		}
		if len(hb) != 8*cnt {
			return nil, formatErr("cluster page: %d hashes for %d clusters", len(hb)/8, cnt)
		}
		k := 0
		for i := 0; i < n; i++ {
			if bm[i/8]&(1<<(i%8)) != 0 {
				hs[i] = nonZero(binary.LittleEndian.Uint64(hb[8*k:]))
				k++
			}
		}
	default:
		return nil, formatErr("cluster page kind %d", kind)
	}
	return hs, nil
}

// isHexSHA256 reports whether s is a SHA-256 in lower-case hex.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
