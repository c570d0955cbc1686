package zstd

import (
	"slices"
	"testing"
)

// TestBoundTaints: a window whose damage alternates every few bytes keeps
// at most maxTaints taints once bounded, and every byte keeps at least its
// level (coarsening only reports more damage), lost ranges untouched.
func TestBoundTaints(t *testing.T) {
	var h history
	levels := []level{lvCond, lvTainted, lvCond, lvDonor, lvLost}
	n := maxTaints + maxTaints/2
	for i := 0; i < n; i++ {
		p := int64(i) * 8
		h.taints = append(h.taints, taint{p, p + 5, levels[i%len(levels)]})
	}
	orig := append([]taint(nil), h.taints...)
	h.boundTaints()
	if len(h.taints) > maxTaints {
		t.Fatalf("%d taints after bounding, more than %d", len(h.taints), maxTaints)
	}
	checkCovered(t, orig, h.taints)
}

// checkCovered fails unless every taint of orig lies within one of got at
// its level or worse, lost ones unchanged, and got is sorted and disjoint.
func checkCovered(t *testing.T, orig, got []taint) {
	t.Helper()
	h := history{taints: got}
	j := 0
	for _, o := range orig {
		for j < len(h.taints) && h.taints[j].end <= o.start {
			j++
		}
		if j == len(h.taints) || h.taints[j].start > o.start || h.taints[j].end < o.end || h.taints[j].state < o.state {
			t.Fatalf("taint %v is not covered at its level after bounding", o)
		}
		if o.state == lvLost && h.taints[j] != o {
			t.Fatalf("lost range %v merged into %v", o, h.taints[j])
		}
	}
	for i := 1; i < len(h.taints); i++ {
		if h.taints[i].start < h.taints[i-1].end {
			t.Fatalf("taints %v and %v overlap", h.taints[i-1], h.taints[i])
		}
	}
}

// TestCheckpointTaintsBounded: a checkpoint copies at most
// maxCheckpointTaints taints, each byte at its level or worse and lost
// ranges untouched; too many lost ranges give no checkpoint.
func TestCheckpointTaintsBounded(t *testing.T) {
	levels := []level{lvCond, lvTainted, lvCond, lvDonor}
	var ts []taint
	for i := 0; i < maxTaints; i++ {
		p := int64(i) * 8
		lv := levels[i%len(levels)]
		if i%64 == 63 {
			lv = lvLost // 2^14 lost ranges among them
		}
		ts = append(ts, taint{p, p + 5, lv})
	}
	got, ok := checkpointTaints(nil, ts)
	if !ok || len(got) > maxCheckpointTaints {
		t.Fatalf("ok %v, %d taints in the checkpoint, at most %d wanted", ok, len(got), maxCheckpointTaints)
	}
	checkCovered(t, ts, got)

	small := ts[:100]
	if got, ok := checkpointTaints(got, small); !ok || !slices.Equal(got, small) {
		t.Fatalf("a small window's taints were not copied as they are")
	}

	lost := make([]taint, maxCheckpointTaints+1)
	for i := range lost {
		lost[i] = taint{int64(i) * 8, int64(i)*8 + 5, lvLost}
	}
	if _, ok := checkpointTaints(nil, lost); ok {
		t.Fatalf("%d lost ranges gave a checkpoint", len(lost))
	}
}
