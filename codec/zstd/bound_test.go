package zstd

import "testing"

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
