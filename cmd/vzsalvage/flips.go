package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/vzsalvage/vzsalvage/codec/zstd"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/report"
)

// flipOutput is repair --json for a flip repair (no sidecar, no copies).
type flipOutput struct {
	Archive string `json:"archive"`
	*zstd.FlipResult
	Output string `json:"output,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // of the repaired archive
	bytes  bool
}

// isZstd reports whether the file at path starts with a zstd frame magic.
func isZstd(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var m [4]byte
	_, err = io.ReadFull(f, m[:])
	return err == nil && bytes.Equal(m[:], []byte{0x28, 0xb5, 0x2f, 0xfd})
}

// runFlipRepair repairs a zstd archive that has neither a sidecar nor
// copies: a compressed block that fails to decode is tried with each of its
// single-bit flips, and one that makes the frame's checksum match is
// written to out (or, with inPlace, over the archive), through a temporary
// file renamed when complete.
func runFlipRepair(w io.Writer, path, out string, inPlace bool, opt zstd.FlipOptions, asJSON bool) error {
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	res, err := zstd.RepairFlips(f, st.Size(), opt)
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	o := flipOutput{Archive: path, FlipResult: res, bytes: opt.Bytes}
	target := out
	if inPlace {
		target = path
	}
	if res.Repaired() && target != "" {
		sum, err := writeFlipped(f, st.Size(), res.Repairs, target)
		if err != nil {
			return &exitError{code: ui.ExitFailed, err: err}
		}
		o.Output, o.SHA256 = target, sum
	}
	if asJSON {
		if err := printJSON(w, o); err != nil {
			return err
		}
	} else {
		printFlips(w, o)
	}
	if res.Intact || o.Output != "" {
		return nil
	}
	return errDamaged
}

// writeFlipped writes the archive in f with the repairs applied to target
// (a temporary name, renamed when complete) and returns its SHA-256.
func writeFlipped(f *os.File, size int64, fixes []zstd.FlipRepair, target string) (string, error) {
	tmp, err := report.CreateTemp(target)
	if err != nil {
		return "", err
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 && err != nil {
			return "", err
		}
		b := buf[:n]
		for _, x := range fixes {
			if x.Offset >= off && x.Offset < off+int64(n) {
				if b[x.Offset-off] != x.Old {
					return "", fmt.Errorf("the archive changed while it was repaired (offset %d)", x.Offset)
				}
				b[x.Offset-off] = x.New
			}
		}
		h.Write(b)
		if _, err := tmp.Write(b); err != nil {
			return "", report.TargetError(err, tmp.Name(), target)
		}
		off += int64(n)
	}
	if err := tmp.Sync(); err != nil {
		return "", report.TargetError(err, tmp.Name(), target)
	}
	if err := tmp.Close(); err != nil {
		return "", report.TargetError(err, tmp.Name(), target)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", report.TargetError(err, tmp.Name(), target)
	}
	tmp = nil
	return hex.EncodeToString(h.Sum(nil)), nil
}

func printFlips(w io.Writer, o flipOutput) {
	res := o.FlipResult
	p := ui.Safe(o.Archive)
	if res.Intact {
		ui.Fprintf(w, "%s: intact (no sidecar: every zstd block decodes and every frame's checksum matches)\n", p)
		return
	}
	kind := "single-bit flips"
	if o.bytes {
		kind = "byte values"
	}
	for _, b := range res.Blocks {
		ui.Fprintf(w, "%s: the compressed block at offset %d fails to decode; tried %d of %d candidates (%s) in its %s (%d passed the section's check, %d decoded to the frame's end, %d matched the checksum) in %.1f s\n",
			p, b.Block, b.Tried, b.Candidates, kind, b.Section, b.Section1, b.End, b.Matched, b.Elapsed.Seconds())
	}
	for _, x := range res.Repairs {
		ui.Fprintf(w, "  %s: the frame decodes and its checksum matches\n", x)
	}
	for _, b := range res.Blocks {
		if b.Matched > 0 && !b.Exhaustive {
			ui.Fprintf(w, "  (the budget ended before every candidate of the block at offset %d was tried: no other match was ruled out; --flip-budget gives more time)\n", b.Block)
		}
	}
	if !res.Repaired() {
		ui.Fprintf(w, "%s: not repaired: %s\n", p, ui.Safe(res.Why))
		ui.Fprintf(w, "next: vzsalvage rescue %s -o DIR   (it reads past the damage)\n", p)
		return
	}
	if o.Output == "" {
		ui.Fprintf(w, "  repairable: run with -o FIXED, or --in-place\n")
		return
	}
	ui.Fprintf(w, "  repaired: %s (SHA-256 %s)\n", ui.Safe(o.Output), o.SHA256)
}
