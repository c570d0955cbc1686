package codec

import (
	"io"

	"github.com/vzsalvage/vzsalvage/damage"
)

// plain passes an uncompressed stream through unchanged.
type plain struct{ r io.Reader }

// Plain returns a Reader for an uncompressed stream: no spans, no checksum.
func Plain(r io.Reader) Reader { return plain{r} }

func (p plain) Read(b []byte) (int, error) { return p.r.Read(b) }
func (plain) Spans() []Span                { return nil }
func (plain) Problems() []damage.Problem   { return nil }
func (plain) Checksum() Checksum           { return ChecksumAbsent }
