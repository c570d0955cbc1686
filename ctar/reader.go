package ctar

import (
	"io"
	"sync"
)

// StreamReader reads a decompressed stream at any offset: it decodes
// forward, and from the start again when asked for an earlier offset. A
// tree copied in directory order reads the stream forward, once.
type StreamReader struct {
	open func() (io.ReadCloser, error)

	mu      sync.Mutex
	r       io.ReadCloser
	pos     int64
	scratch []byte
}

// NewStreamReader returns a reader of the stream that open decodes from
// its start (each call a new decoder).
func NewStreamReader(open func() (io.ReadCloser, error)) *StreamReader {
	return &StreamReader{open: open}
}

// ReadAt implements io.ReaderAt.
func (s *StreamReader) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil || off < s.pos {
		if s.r != nil {
			s.r.Close()
		}
		r, err := s.open()
		if err != nil {
			s.r = nil
			return 0, err
		}
		s.r, s.pos = r, 0
	}
	for s.pos < off {
		if s.scratch == nil {
			s.scratch = make([]byte, 1<<20)
		}
		k, err := s.r.Read(s.scratch[:min(int64(len(s.scratch)), off-s.pos)])
		s.pos += int64(k)
		if err != nil {
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, err
		}
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// Close closes the current decoder.
func (s *StreamReader) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		return nil
	}
	err := s.r.Close()
	s.r = nil
	return err
}
