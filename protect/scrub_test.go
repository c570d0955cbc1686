package protect

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
)

// stopAt checks an archive with a context cancelled from the progress
// callback once half bytes are checked, and returns the last point saved.
func stopAt(t *testing.T, arc string, half int64) *ScanPoint {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pt *ScanPoint
	_, err := Recheck(arc, CheckOptions{Context: ctx, CheckpointBytes: 1 << 40, CheckpointEvery: time.Hour,
		Progress: func(done, _ int64) {
			if done >= half {
				cancel()
			}
		},
		Checkpoint: func(p *ScanPoint) { pt = p }})
	if !errors.Is(err, context.Canceled) || pt == nil {
		t.Fatalf("stopped check: %v, point %v", err, pt)
	}
	// through JSON, as the state file keeps it
	b, err := json.Marshal(pt)
	if err != nil {
		t.Fatal(err)
	}
	var back ScanPoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}

// resumeFrom checks an archive from a point and returns the check and the
// bytes it read (from the progress callback: done goes on from the point).
func resumeFrom(t *testing.T, arc string, pt *ScanPoint) (Check, int64) {
	t.Helper()
	first, last := int64(-1), int64(0)
	c, err := Recheck(arc, CheckOptions{Resume: pt, Progress: func(done, _ int64) {
		if first < 0 {
			first = done
		}
		last = done
	}})
	if err != nil {
		t.Fatal(err)
	}
	start := max(0, (first-1)/scanBlock*scanBlock) // the first block read began here
	if c.ResumedAt != 0 {
		start = c.ResumedAt
	}
	if first-start > scanBlock || first <= start {
		t.Fatalf("first progress %d does not follow the start %d", first, start)
	}
	return c, last - start
}

// TestScrubResumesWithinAnArchive: a check stopped halfway goes on from
// where it stopped, reads only the rest, and its result covers the whole
// archive (damage found before the stop included); an intact archive so
// resumed is intact (the SHA-256 state survives); a changed archive is
// checked from the start.
func TestScrubResumesWithinAnArchive(t *testing.T) {
	defer func(b int64) { scanBlock = b }(scanBlock)
	scanBlock = 256 << 10
	arc := testArchive(t)
	protectOK(t, arc, Options{})
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(b))
	half := size / 2
	if size < 16*scanBlock {
		t.Fatalf("test archive of %d bytes: too small to stop halfway", size)
	}
	// intact, stopped and resumed
	pt := stopAt(t, arc, half)
	if pt.Offset < half || pt.Offset >= size || !pt.Damage.Empty() {
		t.Fatalf("point at %d of %d, damage %v", pt.Offset, size, pt.Damage.Ranges())
	}
	c, read := resumeFrom(t, arc, pt)
	if c.Result != ScrubOK || c.ResumedAt != pt.Offset || read != size-pt.Offset {
		t.Fatalf("resumed intact check: %+v, read %d of the %d left", c, read, size-pt.Offset)
	}
	t.Logf("archive %d bytes: stopped at %d, the resumed check read %d", size, pt.Offset, read)

	// a chunk damaged before the midpoint and one after it
	cs := int64(4096)
	a1, a2 := (size/4)&^(cs-1), (3*size/4)&^(cs-1)
	b[a1] ^= 1
	b[a2+100] ^= 0x40
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := []damage.Range{{Off: a1, Len: cs, State: damage.Tainted}, {Off: a2, Len: cs, State: damage.Tainted}}
	full, err := Repair(arc, RepairOptions{NoLocate: true})
	if err != nil || !slices.Equal(full.Damage.Ranges(), want) {
		t.Fatalf("full check: %v %v, want %v", err, full.Damage.Ranges(), want)
	}
	pt = stopAt(t, arc, half)
	if !slices.Equal(pt.Damage.Ranges(), want[:1]) {
		t.Fatalf("point at %d: damage %v, want %v", pt.Offset, pt.Damage.Ranges(), want[:1])
	}
	rr, err := Repair(arc, RepairOptions{NoLocate: true, Resume: pt})
	if err != nil || rr.ResumedAt != pt.Offset || !slices.Equal(rr.Damage.Ranges(), want) ||
		rr.Intact || rr.Complete != full.Complete || !slices.Equal(rr.Unrepairable.Ranges(), full.Unrepairable.Ranges()) {
		t.Fatalf("resumed repair check: %v %+v", err, rr)
	}
	c, read = resumeFrom(t, arc, pt)
	fc := CheckArchive(arc, "", nil)
	if c.Result != ScrubRepairable || c.Damaged != 2*cs || read != size-pt.Offset || c.Result != fc.Result || c.Detail != fc.Detail {
		t.Fatalf("resumed check: %+v (read %d), full check %+v", c, read, fc)
	}

	// a changed archive (mtime, then size) is checked from the start
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(arc, later, later); err != nil {
		t.Fatal(err)
	}
	if c, read = resumeFrom(t, arc, pt); c.ResumedAt != 0 || read != size || c.Damaged != 2*cs {
		t.Fatalf("after a new mtime: %+v, read %d of %d", c, read, size)
	}
	pt = stopAt(t, arc, half)
	f, err := os.OpenFile(arc, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	os.Chtimes(arc, later, later) // the same mtime: the size tells
	if c, read = resumeFrom(t, arc, pt); c.ResumedAt != 0 || read != size || c.Result != ScrubRepairable {
		t.Fatalf("after a new size: %+v, read %d of %d", c, read, size)
	}
}
