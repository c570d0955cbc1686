// Package codec defines the interface shared by vzsalvage's decompressors
// (codec/zstd, codec/gzip, codec/lzo and the pass-through for uncompressed
// archives): a stream of output bytes plus an account of which of them are
// damaged.
//
// A salvaging Reader never stops at the first corrupt block: it reports the
// damage as Spans in output offsets and goes on. Bytes outside every Span
// must equal the original stream's bytes at the same offset, as far as
// anything short of the stream checksum can tell; where only the checksum
// fails, Checksum says Mismatch and no Span pretends to know where.
package codec

import (
	"errors"
	"io"
	"sort"

	"github.com/vzsalvage/vzsalvage/damage"
)

// Kind names a compression format by what its magic bytes say.
type Kind string

// The kinds vzdump writes.
const (
	None Kind = "none"
	Zstd Kind = "zstd"
	Gzip Kind = "gzip"
	Lzo  Kind = "lzo"
)

// Detect returns the kind whose magic starts b, or None. It needs at most
// 9 bytes.
func Detect(b []byte) Kind {
	switch {
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd:
		return Zstd
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return Gzip
	case len(b) >= 9 && string(b[:9]) == "\x89LZO\x00\r\n\x1a\n":
		return Lzo
	}
	return None
}

// Checksum is the state of a stream's own integrity check.
type Checksum string

const (
	// ChecksumOK: the stream's checksum was read and matches the output.
	ChecksumOK Checksum = "ok"
	// ChecksumMismatch: the checksum does not match the output, or a
	// verifiable part of the stream failed its check.
	ChecksumMismatch Checksum = "mismatch"
	// ChecksumAbsent: the stream carries no checksum.
	ChecksumAbsent Checksum = "absent"
	// ChecksumUnknown: the stream was not read to its end, or damage made
	// the check impossible.
	ChecksumUnknown Checksum = "unknown"
)

// Span is a damaged range of a decoder's output.
//
// Lost spans hold placeholder bytes (zeros) in the output. Tainted spans hold
// the decoder's best guess, which must not be trusted. A Span with Resync set
// is a loss whose true length is not known: Len is the decoder's estimate,
// MaxLen an upper bound of the true length (or -1 when there is none), and
// output after the span is no longer at its true stream offset, so readers
// of the output must find their place again (the VMA scanner looks for the
// next extent header).
//
// A Tainted span with Cond set holds bytes that are right if, and only if,
// every Resync span before it has its true length: they were decoded from
// matches whose source lies before such a span, at the distance the
// decoder assumed. A reader that can confirm those lengths (the VMA scanner
// does, from its extent arithmetic, and then tells the decoder through
// Resizer) may trust them; anyone else must treat them as tainted.
//
// A Tainted span with Donor set holds bytes that a second decoding pass
// (Options.Donor) made from the donor's bytes: donated where the first pass
// lost output, or decoded from matches that copied donated bytes, and from
// nothing else that is unknown. They are the donor's, not known right,
// unless the stream's checksum then matches.
type Span struct {
	Off    int64
	Len    int64
	MaxLen int64
	State  damage.State
	Resync bool
	Cond   bool
	Donor  bool
}

// End returns the output offset just past the span.
func (s Span) End() int64 { return s.Off + s.Len }

// Reader is a decompressor's output stream.
//
// Spans and Problems are append-only (except across a Resize, and the
// spans a Trimmer was allowed to forget): a span, once returned, never
// changes, and every span that starts before the number of bytes returned
// by Read so far has already been appended. Spans are ordered by Off and do
// not overlap.
type Reader interface {
	io.Reader
	// Spans returns the damage found so far, in output offsets.
	Spans() []Span
	// Problems returns what was found wrong so far, in input offsets.
	Problems() []damage.Problem
	// Checksum returns the state of the stream's own check; it is final
	// once Read has returned io.EOF.
	Checksum() Checksum
}

// Resizer is implemented by decoders that can decode again after a Resync
// span once its true length is known.
type Resizer interface {
	// Resize sets the true length of the Resync span that starts at output
	// offset off (trueLen ≤ its MaxLen when that is bounded). The decoder
	// rewinds its output to off: the next Read returns the span's
	// placeholder bytes (trueLen of them) and then the output after it,
	// decoded again at the right distances. Spans that start at or after
	// off are dropped from Spans and reported anew: the span itself as a
	// Lost span of trueLen with Resync false, and bytes that still depend on
	// the resized length (matches reaching back across it) as Cond spans —
	// they are right if the length given was. Only the most recent Resync
	// span can be resized, and only while the decoder still holds what it
	// needs (it returns ErrCannotResize otherwise, changing nothing).
	Resize(off, trueLen int64) error
}

// Trimmer is implemented by readers that can forget spans their reader no
// longer consults, so that what a long damaged stream keeps does not grow
// with its length (the VMA reader trims behind the extent it reads).
type Trimmer interface {
	// TrimSpans lets the reader forget the spans that end at or before
	// output offset off and start before it (Dead): Spans need not return
	// them any more. Slices Spans returned before stay as they were.
	TrimSpans(off int64)
}

// Dead reports whether span s ends at or before off and starts before it:
// a span a TrimSpans(off) lets a reader forget.
func Dead(s Span, off int64) bool { return s.End() <= off && s.Off < off }

// TrimSpans implements Trimmer for a decoder that keeps its spans in
// spans, of which spans[:frozen] were handed out (and never change): it
// drops the dead ones among those, and returns the spans and frozen left.
// The spans left move to a new array once the dead ones number a quarter
// of them (slices handed out keep the old one, unchanged): what is kept is
// at most 1.25 times what is live plus 64, and trimming costs O(1) per
// span, amortized.
func TrimSpans(spans []Span, frozen int, off int64) ([]Span, int) {
	i := sort.Search(frozen, func(i int) bool { return !Dead(spans[i], off) })
	if i == 0 || i < 64 && i < len(spans) || 4*i < len(spans)-i {
		return spans, frozen
	}
	return append(make([]Span, 0, max(len(spans)-i, 16)), spans[i:]...), frozen - i
}

// ErrCannotResize is returned by Resize when the decoder can no longer
// decode the span's surroundings again.
var ErrCannotResize = errors.New("cannot resize this span")

// Options control a decoder.
type Options struct {
	// Strict makes Read fail with ErrCorrupt (wrapped with details) at the
	// first problem instead of salvaging past it.
	Strict bool
	// FailFast, with Strict, is for a caller that, when the read fails,
	// reads again without them to learn what is wrong: the decoder may then
	// be one that does not say where it failed (zstd: klauspost's decoder alone,
	// which needs a fifth less CPU; it also refuses a frame without a
	// checksum). Decoders without such a mode read as with Strict.
	FailFast bool
	// Donor, if set, makes a second pass over a stream a first pass
	// salvaged: lost output takes the donor's bytes, so that what copies
	// from it decodes as the donor says (decoders that cannot use it
	// ignore it).
	Donor Donor
	// Distrust lists input ranges whose bytes may be wrong although they
	// decode (where a merge of copies could not verify its choice): a
	// decoder that can (zstd) reports the output of the blocks they touch,
	// and what copies it, as tainted. Others ignore it.
	Distrust []damage.Range
	// Coarse lets a decoder report damage more coarsely than byte by
	// byte, for a reader that accounts it in 512-byte sectors (the VMA
	// reader): short islands of Cond bytes among tainted bytes, and the
	// clean bytes between them, may be reported plainly tainted. It never
	// reports fewer bytes damaged; it keeps the spans of a badly damaged
	// stream from costing one per few bytes (codec/zstd).
	Coarse bool
	// MaxProblems, if positive, lets a decoder keep only the first
	// MaxProblems problems (and those that say where the stream ends:
	// Truncated, ReadError), counting the rest (ProblemCounter): the
	// problems of a badly damaged stream must not cost memory without
	// bound. The damage is all in the spans either way.
	MaxProblems int
	// KeepCheckpoint makes a first pass keep a Checkpoint (Checkpointer)
	// at the first block its clean path fails on, so that a second pass
	// (Donor) can start there instead of at the stream's start. Decoders
	// that cannot ignore it.
	KeepCheckpoint bool
	// Resume, if set, makes the decoder continue from a first pass's
	// checkpoint: its input must start at Resume.Input(), and its output
	// starts at output offset ResumeFrom (Resume.From() ≤ ResumeFrom ≤
	// Resume.Until()). Only the decoder that made it can.
	Resume     Checkpoint
	ResumeFrom int64
}

// Checkpoint is a first pass's decoder state before its first damage,
// from which a second pass over the same stream can continue.
type Checkpoint interface {
	// Input is the input offset a resumed decoder's input starts at.
	Input() int64
	// From and Until bound the output offsets it can resume at.
	From() int64
	Until() int64
}

// Checkpointer is implemented by decoders that keep a Checkpoint
// (Options.KeepCheckpoint). Checkpoint returns nil while there is none;
// it may be called while another goroutine reads.
type Checkpointer interface {
	Checkpoint() Checkpoint
}

// ProblemCounter is implemented by decoders that may keep fewer problems
// than they found (Options.MaxProblems).
type ProblemCounter interface {
	// ProblemCount returns how many problems were found so far.
	ProblemCount() int
}

// KeepProblem reports whether a decoder with the given MaxProblems that
// keeps kept problems keeps one more of kind k.
func KeepProblem(kept, maxProblems int, k damage.Kind) bool {
	switch {
	case maxProblems <= 0 || kept < maxProblems:
		return true
	case k == damage.Truncated || k == damage.ReadError:
		return kept < maxProblems+16
	}
	return false
}

// CountProblems returns how many problems r found: its ProblemCount, or
// the length of its Problems.
func CountProblems(r Reader) int {
	if pc, ok := r.(ProblemCounter); ok {
		return pc.ProblemCount()
	}
	return len(r.Problems())
}

// Donor supplies a second decoding pass with what the first could not
// decode, in the output offsets of the first pass's final account.
type Donor interface {
	// Loss returns the loss of unknown length that starts at output offset
	// off, with its true length, when the first pass established it (the
	// VMA extent arithmetic); false when it is not known for certain.
	Loss(off int64) (Loss, bool)
	// Donate writes into parts of p the bytes that output [off,
	// off+len(p)) holds in the donor, and returns those parts (output
	// offsets, ascending, disjoint, within the range); it leaves the rest
	// of p alone.
	Donate(off int64, p []byte) []Piece
}

// Loss is a loss of unknown length a first pass made: output [Off,
// Off+Len) (Len as finally known), and the input offset where decoding
// resumed after it.
type Loss struct{ Off, Len, Resume int64 }

// LossLister is implemented by decoders that list their losses of unknown
// length (with Len as estimated or resized), for a second pass.
type LossLister interface {
	Losses() []Loss
}

// Piece is a range of output a Donor filled.
type Piece struct{ Off, Len int64 }

// ErrCorrupt is wrapped by the errors a strict decoder returns for damaged input.
var ErrCorrupt = errors.New("corrupt compressed data")

// ErrTruncated is wrapped by the errors a strict decoder returns when the
// input ends early.
var ErrTruncated = errors.New("compressed data ends early")

// AsyncFiller is implemented by input readers that can copy their next
// bytes into a buffer on a goroutine of their own (archive's read-ahead),
// so that the copy does not take the decoder's time.
type AsyncFiller interface {
	// FillAsync starts reading into b (at least one byte, or an error, as
	// Read) and delivers the result on the channel returned. Until it is
	// delivered, b belongs to the filler and the reader must not be used
	// in any other way.
	FillAsync(b []byte) <-chan FillResult
}

// FillResult is the outcome of an AsyncFiller's read: as Read's results.
type FillResult struct {
	N   int
	Err error
}
