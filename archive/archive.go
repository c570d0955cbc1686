package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/vzsalvage/vzsalvage/codec"
)

// Archive is an opened backup file.
type Archive struct {
	Path        string
	Name        Name
	Compression codec.Kind
	// Size is the file's size in bytes.
	Size int64
	// Taps, if set before Payload, are each called with every byte of the
	// file in order, each from a goroutine of its own that runs beside the
	// decoder (the slice is valid only during the call). They may not see
	// the end of the file when the decoder stops reading early; once Close
	// returns they have seen every byte read.
	Taps []func([]byte)
	// Holder, if set before Payload, is a tap that the file is read into
	// (see Holder); as Taps, it may not see the end of the file.
	Holder Holder

	f       *os.File
	read    atomic.Int64
	readers []io.Closer // the read-aheads of Payload
}

// ErrEmpty is returned for an empty file.
var ErrEmpty = errors.New("empty file")

// Open opens an archive read-only and detects its compression.
func Open(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	a := &Archive{Path: path, Name: ParseName(path), Size: st.Size(), f: f}
	var magic [16]byte
	n, _ := f.ReadAt(magic[:], 0)
	if n == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrEmpty)
	}
	a.Compression = codec.Detect(magic[:n])
	return a, nil
}

// Close stops the readers of Payload and closes the file.
func (a *Archive) Close() error {
	for _, p := range a.readers {
		p.Close()
	}
	return a.f.Close()
}

// InputOffset returns how many bytes of the file the current payload
// reader has consumed (for progress).
func (a *Archive) InputOffset() int64 { return a.read.Load() }

// Payload returns a new decoder over the whole file, from its start (from
// opt.Resume's input offset when it resumes a first pass).
func (a *Archive) Payload(opt codec.Options) (codec.Reader, error) {
	a.read.Store(0)
	dec := decoders[a.Compression]
	if dec == nil {
		return nil, fmt.Errorf("%s: %s compression is not supported", a.Path, a.Compression)
	}
	var in int64
	if opt.Resume != nil {
		// a second pass from a first pass's checkpoint: the input from
		// where it starts (no Taps: they see the whole file)
		in = opt.Resume.Input()
		if in < 0 || in > a.Size || len(a.Taps) > 0 || a.Holder != nil {
			return nil, fmt.Errorf("%s: cannot resume at input offset %d", a.Path, in)
		}
		a.read.Store(in)
	}
	src := &countingReader{r: io.NewSectionReader(a.f, in, a.Size-in), n: &a.read}
	if a.Compression == codec.Zstd && len(a.Taps) == 0 && a.Holder == nil {
		// zstd reads through FillAsync: straight into its buffer
		d := &direct{r: src}
		a.readers = append(a.readers, d)
		return dec(d, opt)
	}
	pf := newPrefetch(src, prefetchChunk, prefetchDepth, a.Taps, a.Holder)
	a.readers = append(a.readers, pf)
	return dec(pf, opt)
}

// Head returns a new decoder over the file from its start that reads it
// without read-ahead and without Taps or InputOffset: for reading the first
// bytes of the payload only.
func (a *Archive) Head(opt codec.Options) (codec.Reader, error) {
	dec := decoders[a.Compression]
	if dec == nil {
		return nil, fmt.Errorf("%s: %s compression is not supported", a.Path, a.Compression)
	}
	return dec(io.NewSectionReader(a.f, 0, a.Size), opt)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
