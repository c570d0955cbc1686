package protect

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Options control Protect.
type Options struct {
	// SidecarDir puts the sidecar there instead of beside the archive.
	SidecarDir string
	// Overhead is the parity's size relative to the archive's
	// (DefaultOverhead when 0).
	Overhead float64
	// Progress, if set, is called now and then with the bytes of the
	// archive read and its size.
	Progress func(done, total int64)
	// Reread, if set, is called when the first, fast read of a .zst
	// archive found something wrong and the full read, which locates
	// it, starts from the file's start (Progress starts again from 0).
	Reread func()
	// Tool names the program in the sidecar's header.
	Tool string
	// Context, if set, stops the read when done (an interrupt): no
	// sidecar is written and its temporary file is removed.
	Context context.Context

	// version is the format version to write (Version when 0); tests
	// write version 1 to check that it is still read.
	version int
	// noFast makes the only read the full one (tests compare the two).
	noFast bool
}

// Result is what Protect did.
type Result struct {
	Archive string
	// Sidecar is the sidecar written; empty when the archive was damaged.
	Sidecar string
	// Report is the verification's account (as `vzsalvage verify`).
	Report *report.Report
	// Intact says the archive verified intact (and the sidecar was written).
	Intact      bool
	ArchiveSize int64
	SidecarSize int64
	Parity      Parity
	fast        bool // the FailFast read gave the result
}

// maxOpenPages bounds the cluster pages held while their clusters arrive
// (64 MiB of hashes).
const maxOpenPages = 2048

// Protect verifies an archive end to end (as `vzsalvage verify`) and, when
// it is intact, writes its sidecar atomically. A damaged archive gets no
// sidecar (Result.Intact is false); an error means it could not be read.
func Protect(path string, opt Options) (*Result, error) {
	if opt.Overhead == 0 {
		opt.Overhead = DefaultOverhead
	}
	par, err := ParityFor(opt.Overhead)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if opt.version == 0 {
		opt.version = Version
	}
	if opt.version < minVersion || opt.version > Version {
		return nil, fmt.Errorf("sidecar format version %d: this vzsalvage writes versions %d to %d", opt.version, minVersion, Version)
	}
	// A zstd archive is read first with the FailFast decoder (a fifth less
	// CPU); if that read fails for any reason, the archive is read again as
	// before, which says what is wrong (or finds it intact after all: a
	// stream without a checksum).
	if fast, _ := isZstd(path); fast && !opt.noFast {
		res, err := protectPass(path, opt, par, st, true)
		if !errors.Is(err, errRetry) {
			return res, err
		}
		if opt.Reread != nil {
			opt.Reread()
		}
	}
	return protectPass(path, opt, par, st, false)
}

// errRetry: the FailFast read found something wrong (protectPass reads
// again without it).
var errRetry = errors.New("retry without FailFast")

// isZstd reports whether the archive is zstd-compressed (the only codec
// with a FailFast decoder of its own).
func isZstd(path string) (bool, error) {
	a, err := archive.Open(path)
	if err != nil {
		return false, err
	}
	defer a.Close()
	return a.Compression == codec.Zstd, nil
}

// protectPass is one read of Protect: it verifies the archive while it
// computes the sidecar's hashes and parity, and writes the sidecar when the
// archive is intact. With fast, the read is FailFast and any failure
// (other than an interrupt) returns errRetry, with no sidecar written.
func protectPass(path string, opt Options, par Parity, st os.FileInfo, fast bool) (*Result, error) {
	size := st.Size()
	scPath := SidecarPath(path, opt.SidecarDir)
	sw, err := createSidecar(scPath, uint32(opt.version))
	if err != nil {
		return nil, err
	}
	finished := false
	defer func() {
		if !finished {
			sw.abort()
		}
	}()

	// the archive's pin: version 1 the SHA-256 of its bytes (a tap of its
	// own), version 2 the SHA-256 of its chunk hashes (as they are written)
	fileSum, chunkSum := sha256.New(), sha256.New()
	enc, err := newEncoder(par, size, func(s segment, hashes []uint64, parity []byte) error {
		b := make([]byte, 0, 8*len(hashes))
		for _, h := range hashes {
			b = appendUint64(b, h)
		}
		chunkSum.Write(b) // (segments are emitted in order)
		if err := sw.record(recChunks, uint64(s.index), b); err != nil {
			return err
		}
		return sw.record(recParity, uint64(s.index), parity)
	})
	if err != nil {
		return nil, err
	}
	defer enc.free() // (after the taps: Verify returns once they are done)
	// the chunk hashes and the parity (the file is read into the
	// encoder's buffers) and for version 1 the archive's hash, each on a
	// goroutine of its own beside the decoder
	var taps []func([]byte)
	var rest io.Writer = enc
	if opt.version == 1 {
		taps = append(taps, func(b []byte) { fileSum.Write(b) })
		rest = io.MultiWriter(fileSum, enc)
	}

	var table *pageTable
	var obsErr error
	var once sync.Once
	hasher := newClusterHasher()
	var page []byte
	observe := func(h *vma.Header, c *vma.Cluster) {
		once.Do(func() {
			table = newPageTable(h.Devices, maxOpenPages, func(dev uint8, p int64, hs []uint64) error {
				page = encodePage(page[:0], hs)
				return sw.record(recCluster, clusterKey(dev, p), page)
			})
		})
		if obsErr != nil {
			return
		}
		d := h.Device(c.Dev)
		if d == nil {
			obsErr = fmt.Errorf("cluster of unknown device %d", c.Dev)
			return
		}
		obsErr = table.set(c.Dev, c.Num, hasher.hash(d.Size, c))
	}

	vres, err := extract.Verify(path, extract.Options{FailFast: fast, Progress: opt.Progress, Taps: taps, Holder: enc, Observe: observe, Hash: true, NoSidecar: true, Context: opt.Context})
	if fast && (err != nil || !vres.Intact()) && (opt.Context == nil || opt.Context.Err() == nil) {
		return nil, errRetry
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Archive: path, Report: vres.Report, ArchiveSize: size, Parity: par, fast: fast}
	if !vres.Intact() {
		return res, nil
	}
	if obsErr != nil {
		return nil, fmt.Errorf("%s: %w", path, obsErr)
	}
	// the decoder may stop before the file's end (bytes after the stream)
	if tapped := enc.held; tapped < size {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(rest, io.NewSectionReader(f, tapped, size-tapped))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if enc.err != nil {
		return nil, fmt.Errorf("%s: %w", path, enc.err)
	}
	if !enc.done() {
		return nil, fmt.Errorf("%s: the file changed while it was read", path)
	}
	switch {
	case vres.Tar != nil:
		if err := writeMembers(sw, vres.Tar.Hashes); err != nil {
			return nil, err
		}
	case table == nil:
		return nil, fmt.Errorf("%s: %w", path, errors.New("no cluster in the archive"))
	default:
		if s := table.incomplete(); s != "" {
			return nil, fmt.Errorf("%s: cluster hashes incomplete: %s", path, s)
		}
	}
	h := newHeader(path, st, vres, par, opt.Tool)
	h.Version = opt.version
	if opt.version == 1 {
		h.Archive.SHA256 = hex.EncodeToString(fileSum.Sum(nil))
	} else {
		h.Archive.ChunksSHA256 = hex.EncodeToString(chunkSum.Sum(nil))
	}
	if err := sw.finish(h); err != nil {
		return nil, err
	}
	finished = true
	res.Intact, res.Sidecar, res.SidecarSize = true, scPath, sw.off
	return res, nil
}

// newHeader fills a sidecar header from what the verification read.
func newHeader(path string, st os.FileInfo, vres *extract.Result, par Parity, tool string) *Header {
	a := vres.Report.Archives[0]
	h := &Header{
		Format: "vzsalvage-sidecar", Version: Version, Created: time.Now().UTC().Format(time.RFC3339), Tool: tool,
		Archive:  ArchiveInfo{Name: st.Name(), Size: st.Size(), Compression: a.Compression, MTime: st.ModTime().Unix()},
		Clusters: ClusterInfo{Hash: "xxh64", Size: clusterSize, Page: pageClusters},
		Chunks:   ChunkInfo{Hash: "xxh64", Size: par.ShardSize},
		Parity:   par,
		Verify:   VerifyResult{Status: string(a.Status), Checksum: string(a.Checksum)},
	}
	if vres.Tar != nil {
		h.Tar = &TarInfo{Members: int64(len(vres.Tar.Hashes)), Hash: "xxh64", Page: pageMembers}
		return h
	}
	h.VMA = VMAInfo{UUID: vres.Header.UUIDString(), Ctime: vres.Header.Ctime.Unix()}
	for _, d := range vres.Header.Devices {
		h.VMA.Devices = append(h.VMA.Devices, DeviceInfo{ID: int(d.ID), Name: d.Name, Size: d.Size})
	}
	return h
}

// writeMembers writes a container's member hashes, a page of pageMembers
// at a time.
func writeMembers(sw *sidecarWriter, hs []ctar.MemberHash) error {
	b := make([]byte, 0, pageMembers*memberEntry)
	for p := 0; p*pageMembers < len(hs); p++ {
		b = b[:0]
		for _, h := range hs[p*pageMembers : min(len(hs), (p+1)*pageMembers)] {
			b = binary.LittleEndian.AppendUint64(b, h.Header)
			b = binary.LittleEndian.AppendUint64(b, h.Data)
		}
		if err := sw.record(recMembers, uint64(p), b); err != nil {
			return err
		}
	}
	return nil
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}
