// Package payload is the seam between the codecs and what a backup holds:
// it detects the payload of a decompressed stream by its content — a VMA
// stream (a VM backup) or a tar stream (a container backup) — and gives
// every kind one interface, so that inspect, verify, extract, ls, cp and
// rescue dispatch in one place (Open) and never assume a kind.
//
// Adding a payload: implement Payload in a file of this package (a
// Match on the stream's first bytes, an Inspect that reads only the start,
// a Scan that reads everything past damage and hands the content to a
// Sink), add it to payloads, and make its tests call payloadtest.Check.
package payload

import (
	"errors"
	"fmt"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Kind names a payload.
type Kind string

// The payloads vzdump writes.
const (
	VMA Kind = "vma" // qemu-server: a VMA stream of disks and configs
	Tar Kind = "tar" // pve-container: a GNU tar of the root filesystem
)

// HeadSize is how many bytes of the decompressed stream Match looks at.
const HeadSize = 512

// Payload reads one kind of decompressed stream.
type Payload interface {
	// Kind names the payload.
	Kind() Kind
	// Match reports whether head, the stream's first HeadSize bytes (fewer
	// if it is shorter), starts this payload. It must not accept what
	// another payload's Match accepts.
	Match(head []byte) bool
	// Inspect reads only the start of the stream: the configs and, where
	// the payload declares them up front, its units.
	Inspect(r codec.Reader) (*Info, error)
	// Scan reads the stream to its end, past damage, hands what it reads
	// to sink (nil: read only), and accounts for every unit's damage. The
	// error is a failure of the sink or of reading; damage is in Result.
	Scan(r codec.Reader, sink Sink, opt Options) (*Result, error)
}

// payloads lists every payload, in the order Detect tries them.
var payloads = []Payload{VMAPayload{}, TarPayload{}}

// ErrUnknown is returned by Detect when no payload matches.
var ErrUnknown = errors.New("neither a VMA nor a tar stream inside")

// Options control a Scan.
type Options struct {
	// Strict stops at the first problem (Result.Err says which).
	Strict bool
}

// Unit is one thing a payload holds: a disk of a VM, a file of a
// container.
type Unit struct {
	// ID identifies the unit in the Sink calls: a VMA device id, an index
	// into a tar's members.
	ID   int
	Name string
	Size int64
	// Damage lists the unit's byte ranges (unit offsets) not known to be
	// right; nil when none.
	Damage *damage.Map
}

// Sink receives the content a Scan reads.
type Sink interface {
	// Unit announces a unit before its first bytes (its Size may still be
	// 0 when the payload learns it only later, as a headerless VMA does).
	Unit(u Unit) error
	// WriteAt stores bytes of unit id at off. Bytes the decoder lost come
	// as zeros; the unit's Damage says where.
	WriteAt(id int, p []byte, off int64) error
}

// Config is a config file stored in the payload (qemu-server.conf,
// pct.conf, pct.fw).
type Config struct {
	Name string
	Data []byte
}

// Info is what the start of a payload says.
type Info struct {
	Kind    Kind
	Configs []Config
	// Units lists what the payload declares up front (a VM's disks); a
	// container's files are known only after a Scan.
	Units    []Unit
	Problems []damage.Problem
	// VMA is the VMA header (VMA only).
	VMA *vma.Header
}

// Result is what a Scan found.
type Result struct {
	Kind    Kind
	Configs []Config
	// Units lists every unit with its damage.
	Units []Unit
	// Problems found in the payload's own structures (stream offsets), at
	// most about a thousand; ProblemCount counts them all.
	Problems     []damage.Problem
	ProblemCount int
	// Intact: the payload is complete and nothing in it is damaged.
	Intact bool
	// Err is the problem that ended a strict read, or a read that could not
	// go on; the rest of the Result says what was read until then.
	Err error
	// The payload's own account, for reports that need more than the
	// above: the VMA header and result, or the tar index.
	VMAHeader *vma.Header
	VMA       *vma.Result
	Tar       *ctar.Index
}

// Detect returns the payload that head (the stream's first HeadSize bytes)
// starts. hint is the payload the file name suggests ("vma", "tar" or
// ""): it decides only when the content matches nothing (a damaged start),
// and a damaged start of an unnamed file is read as a VMA stream, whose
// salvage can do without its header.
func Detect(head []byte, hint string) (Payload, error) {
	for _, p := range payloads {
		if p.Match(head) {
			return p, nil
		}
	}
	for _, p := range payloads {
		if string(p.Kind()) == hint {
			return p, nil
		}
	}
	if len(head) == 0 {
		return nil, fmt.Errorf("%w (the stream is empty)", ErrUnknown)
	}
	return VMAPayload{}, nil
}

// ByKind returns the payload of kind k.
func ByKind(k Kind) (Payload, error) {
	for _, p := range payloads {
		if p.Kind() == k {
			return p, nil
		}
	}
	return nil, fmt.Errorf("payload %q: %w", k, ErrUnknown)
}
