package payload

import (
	"fmt"
	"io"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/codec"
)

// Stream is an opened backup: the file and its payload, detected by
// content after the codec. Decode returns the decompressed stream.
type Stream struct {
	Archive *archive.Archive
	Payload Payload
	opt     codec.Options
	ahd     *codec.Ahead
	dec     codec.Reader
}

// Open opens a backup read-only and detects its compression and its
// payload by content (it decodes the first HeadSize bytes to do so).
func Open(path string, opt codec.Options) (*Stream, error) {
	a, err := archive.Open(path)
	if err != nil {
		return nil, err
	}
	head, err := readHead(a, opt)
	if err != nil {
		a.Close()
		return nil, err
	}
	p, err := Detect(head, a.Name.Payload)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Stream{Archive: a, Payload: p, opt: opt}, nil
}

// Decode returns the decompressed stream from its first byte, decoded
// ahead in its own goroutine (or goroutines of the decoder's own: a
// codec.SelfAhead; set Archive.Taps before). Call it once.
func (s *Stream) Decode() (codec.Reader, error) {
	opt := s.opt
	opt.Coarse = s.Kind() == VMA // the VMA reader accounts damage in sectors
	opt.MaxProblems = MaxProblems
	dec, err := s.Archive.Payload(opt)
	if err != nil {
		return nil, err
	}
	var r codec.Reader
	s.dec = dec
	r, s.ahd = readAhead(dec)
	return r, nil
}

// readAhead returns dec decoded ahead in a goroutine of its own, and that
// read-ahead (to close); or, for a decoder that decodes ahead on
// goroutines of its own (codec.SelfAhead), dec itself and nil.
func readAhead(dec codec.Reader) (codec.Reader, *codec.Ahead) {
	if _, ok := dec.(codec.SelfAhead); ok {
		return dec, nil
	}
	a := codec.ReadAhead(dec, 1<<20, 4)
	return a, a
}

// MaxProblems is how many problems Decode's decoder keeps (as the VMA
// reader does: vma.Options.MaxProblems); the report counts them all.
const MaxProblems = 1000

// readHead decodes the stream's first HeadSize bytes (a first pass: no
// donor).
func readHead(a *archive.Archive, opt codec.Options) ([]byte, error) {
	dec, err := a.Head(codec.Options{Strict: opt.Strict})
	if err != nil {
		return nil, err
	}
	head := make([]byte, HeadSize)
	n, err := io.ReadFull(dec, head)
	if c, ok := dec.(io.Closer); ok {
		c.Close()
	}
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF && !opt.Strict {
		return nil, err
	}
	return head[:n], nil
}

// Raw returns the decoder under Decode's read-ahead (nil before Decode),
// for what needs the decoder itself.
func (s *Stream) Raw() codec.Reader { return s.dec }

// Kind returns the payload's kind.
func (s *Stream) Kind() Kind { return s.Payload.Kind() }

// Close stops the decoders and closes the file.
func (s *Stream) Close() error {
	if s.ahd != nil {
		s.ahd.Close()
	}
	if c, ok := s.dec.(io.Closer); ok {
		c.Close()
	}
	return s.Archive.Close()
}

// Reopen returns a new decoder of the whole stream from its first byte,
// over its own handle of the file: readers that need to go back (a
// container's files, read by ctar.StreamReader) use it.
func (s *Stream) Reopen() (io.ReadCloser, error) { return OpenDecoded(s.Archive.Path, s.opt) }

// OpenDecoded opens a backup and returns its decompressed stream from the
// first byte, decoded ahead (as by Decode); Close closes the file.
func OpenDecoded(path string, opt codec.Options) (io.ReadCloser, error) {
	a, err := archive.Open(path)
	if err != nil {
		return nil, err
	}
	dec, err := a.Payload(opt)
	if err != nil {
		a.Close()
		return nil, err
	}
	r, ahd := readAhead(dec)
	return &reopened{Reader: r, ahd: ahd, dec: dec, a: a}, nil
}

type reopened struct {
	io.Reader
	ahd *codec.Ahead // nil for a codec.SelfAhead
	dec codec.Reader
	a   *archive.Archive
}

func (r *reopened) Close() error {
	if r.ahd != nil {
		r.ahd.Close()
	}
	if c, ok := r.dec.(io.Closer); ok {
		c.Close()
	}
	return r.a.Close()
}

// IsBackup reports whether the file at path is a backup: compressed by a
// codec vzsalvage reads, or starting with a payload's header. A damaged
// uncompressed backup whose start matches nothing is not recognised.
func IsBackup(path string) (bool, error) {
	a, err := archive.Open(path)
	if err != nil {
		return false, err
	}
	defer a.Close()
	if a.Compression != codec.None {
		return true, nil
	}
	head, err := readHead(a, codec.Options{})
	if err != nil {
		return false, err
	}
	for _, p := range payloads {
		if p.Match(head) {
			return true, nil
		}
	}
	return false, nil
}

// KindOf returns the payload of the backup at path, detected as Open does.
func KindOf(path string) (Kind, error) {
	a, err := archive.Open(path)
	if err != nil {
		return "", err
	}
	defer a.Close()
	head, err := readHead(a, codec.Options{})
	if err != nil {
		return "", err
	}
	p, err := Detect(head, a.Name.Payload)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return p.Kind(), nil
}
