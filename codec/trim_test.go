package codec

import (
	"reflect"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
)

// TestTrimSpans: trimming drops only dead spans among those handed out,
// never changes a slice handed out before, and keeps at most a quarter of
// the live spans (or 63) dead.
func TestTrimSpans(t *testing.T) {
	var spans, all []Span
	frozen := 0
	var handed [][]Span
	var copies [][]Span
	for i := 0; i < 5000; i++ {
		off := int64(i) * 100
		add := []Span{{Off: off, Len: 50, State: damage.Tainted}}
		if i%7 == 0 {
			// a zero-length loss of unknown length at a span's end
			add = append(add, Span{Off: off + 50, Resync: true, MaxLen: -1, State: damage.Lost})
		}
		spans, all = append(spans, add...), append(all, add...)
		if i%10 == 0 {
			frozen = len(spans) - 1 // the last one is not handed out
			s := spans[:frozen:frozen]
			handed = append(handed, s)
			copies = append(copies, append([]Span(nil), s...))
			at := off - 2000 // the consumer is 20 spans behind
			spans, frozen = TrimSpans(spans, frozen, at)
			dead := 0
			for _, s := range spans {
				if Dead(s, at) {
					dead++
				}
			}
			if dead > max(63, (len(spans)-dead)/4) {
				t.Fatalf("at %d: %d dead spans kept, %d live", at, dead, len(spans)-dead)
			}
			for j := range spans[dead:] {
				if spans[dead+j].End() <= at && spans[dead+j].Off < at {
					t.Fatalf("a dead span after a live one")
				}
			}
			live := 0
			for _, s := range all {
				if !Dead(s, at) {
					live++
				}
			}
			if !reflect.DeepEqual(spans[dead:], all[len(all)-live:]) {
				t.Fatalf("trimmed at %d: the live spans changed", at)
			}
		}
	}
	for i := range handed {
		if !reflect.DeepEqual(handed[i], copies[i]) {
			t.Fatalf("slice %d handed out changed", i)
		}
	}
	if len(spans) > 100 {
		t.Errorf("%d spans kept", len(spans))
	}
}

// TestKeepProblem: past the bound only the problems that end the stream
// are kept (a few).
func TestKeepProblem(t *testing.T) {
	if !KeepProblem(5, 0, damage.Corrupt) || !KeepProblem(4, 5, damage.Corrupt) || KeepProblem(5, 5, damage.Corrupt) {
		t.Fatal("bound")
	}
	if !KeepProblem(5, 5, damage.Truncated) || !KeepProblem(5, 5, damage.ReadError) || KeepProblem(21, 5, damage.Truncated) {
		t.Fatal("problems that end the stream")
	}
}
