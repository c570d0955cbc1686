package vma

// Retained returns how many items the reader keeps of the spans it has
// consulted: the Resync offsets not yet passed and the confirmations and
// resize attempts not yet folded (TestRetainedBounded).
func (r *Reader) Retained() int { return len(r.rsOffs) + len(r.confirmed) + len(r.resizeTried) }

// Passed returns the stream offset before which the reader passed the spans.
func (r *Reader) Passed() int64 { return r.passed }

// Ahead returns how far past the passed spans the reader has buffered the
// stream: the spans it may still consult lie there.
func (r *Reader) Ahead() int64 { return r.bufEnd() - r.passed }

func init() { foldCheck = true }
