package lzo

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestWriterLzop: what the Writer makes, the real lzop and our reader
// decode to the same bytes, with every checksum verified.
func TestWriterLzop(t *testing.T) {
	data := bytes.Repeat([]byte("stored lzop blocks "), 50000) // ~950 KiB: several blocks
	var b bytes.Buffer
	w := NewWriter(&b, time.Unix(1734000000, 0))
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	z, err := NewReader(bytes.NewReader(b.Bytes()), codec.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(z)
	if err != nil || !bytes.Equal(got, data) || z.Checksum() != codec.ChecksumOK {
		t.Errorf("our reader: %v, equal %v, checksum %s", err, bytes.Equal(got, data), z.Checksum())
	}
	lzop := testutil.RequireTool(t, "lzop")
	p := filepath.Join(t.TempDir(), "x.lzo")
	os.WriteFile(p, b.Bytes(), 0o644)
	out, err := exec.Command(lzop, "-dc", p).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("lzop -dc: %v, equal %v", err, bytes.Equal(out, data))
	}
	if err := exec.Command(lzop, "-t", p).Run(); err != nil {
		t.Errorf("lzop -t: %v", err)
	}
}
