package testimg

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Pinned files: a real tool's output checked in, small.
//
// A test whose verdict depends on the exact bytes a CLI made (which zstd
// block a garbage run hits) must not run the CLI again: another version
// lays its output out differently. So the output is checked in under
// testdata. Most of a compressor's output on disk-like data is stored
// blocks and raw literals, byte copies of its input: a pinned file keeps
// only what is not a copy of a reference (the input, which the test
// generates deterministically), as a delta, gzipped:
//
//	"vzsalvage-pin 1\n", the tool's version line, '\n',
//	ops: uvarint literal length, the literal bytes, uvarint copy length,
//	     uvarint reference offset; until the end,
//	and the SHA-256 of the whole output (the last 32 bytes).

const pinMagic = "vzsalvage-pin 1\n"

// Pin encodes out (made by tool version, one line) against ref.
func Pin(out, ref []byte, version string) []byte {
	const k = 32 // bytes hashed; a copy is found if at least k+step-1 long
	const step = 16
	index := map[[4]uint64]int{}
	key := func(b []byte) [4]uint64 {
		return [4]uint64{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]),
			binary.LittleEndian.Uint64(b[16:]), binary.LittleEndian.Uint64(b[24:])}
	}
	for p := 0; p+k <= len(ref); p += step {
		if _, ok := index[key(ref[p:])]; !ok {
			index[key(ref[p:])] = p
		}
	}
	var body bytes.Buffer
	body.WriteString(pinMagic + version + "\n")
	lit := 0 // out[lit:i] is pending literal bytes
	put := func(v uint64) { body.Write(binary.AppendUvarint(nil, v)) }
	emit := func(i, n, at int) {
		put(uint64(i - lit))
		body.Write(out[lit:i])
		put(uint64(n))
		put(uint64(at))
	}
	for i := 0; i+k <= len(out); {
		p, ok := index[key(out[i:])]
		if !ok {
			i++
			continue
		}
		a, b := i, p // extend back into the pending literals
		for a > lit && b > 0 && out[a-1] == ref[b-1] {
			a, b = a-1, b-1
		}
		n := 0
		for a+n < len(out) && b+n < len(ref) && out[a+n] == ref[b+n] {
			n++
		}
		if n < 64 {
			i++
			continue
		}
		emit(a, n, b)
		i = a + n
		lit = i
	}
	emit(len(out), 0, 0)
	sum := sha256.Sum256(out)
	body.Write(sum[:])
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(body.Bytes())
	zw.Close()
	return z.Bytes()
}

// Unpin decodes a pinned file against ref: the tool's output and version.
func Unpin(pinned, ref []byte) (out []byte, version string, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(pinned))
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, "", err
	}
	if !bytes.HasPrefix(body, []byte(pinMagic)) || len(body) < len(pinMagic)+33 {
		return nil, "", errors.New("not a pinned file")
	}
	rest := body[len(pinMagic) : len(body)-32]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		return nil, "", errors.New("pinned file: no version line")
	}
	version, rest = string(rest[:nl]), rest[nl+1:]
	r := bytes.NewReader(rest)
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF {
			break
		}
		if err != nil || n > uint64(r.Len()) {
			return nil, "", errors.New("pinned file: bad literal")
		}
		lit := make([]byte, n)
		io.ReadFull(r, lit)
		out = append(out, lit...)
		cn, err1 := binary.ReadUvarint(r)
		at, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil || at+cn > uint64(len(ref)) {
			return nil, "", errors.New("pinned file: bad copy")
		}
		out = append(out, ref[at:at+cn]...)
	}
	if sha256.Sum256(out) != [32]byte(body[len(body)-32:]) {
		return nil, "", errors.New("pinned file: the result's SHA-256 differs (wrong reference data?)")
	}
	return out, version, nil
}

// LoadPinned returns the tool output pinned in file (a path under the
// test's package directory), decoded against ref. With
// VZSALVAGE_UPDATE_PINNED=1 in the environment it first makes the file
// anew with build (which runs the tool) and version (its version line):
// only do that with the tool version the file was made with, and check
// what changes.
func LoadPinned(t testing.TB, file string, ref []byte, version func() string, build func() []byte) []byte {
	t.Helper()
	if os.Getenv("VZSALVAGE_UPDATE_PINNED") == "1" {
		v := version()
		out := build()
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, Pin(out, ref, v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("pinned tool output: %v (VZSALVAGE_UPDATE_PINNED=1 makes it)", err)
	}
	out, _, err := Unpin(b, ref)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return out
}

// PinnedVersion returns the tool version line a pinned file was made with.
func PinnedVersion(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 256)
	n, _ := io.ReadFull(zr, head)
	head = bytes.TrimPrefix(head[:n], []byte(pinMagic))
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		return string(head[:i])
	}
	t.Fatalf("%s: no version line", file)
	return ""
}
