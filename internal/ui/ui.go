// Package ui is vzsalvage's terminal layer: progress bars on a terminal
// only, sizes for humans, and exit statuses.
package ui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Exit statuses of every command.
const (
	ExitIntact  = 0 // everything read and intact
	ExitDamaged = 1 // damage found; the work was still done as far as possible
	ExitFailed  = 2 // could not run: usage, unreadable input, no space
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Progress draws one progress line on stderr when it is a terminal, and
// nothing otherwise. It is safe for concurrent use. The speed it shows is
// measured over the last seconds of the phase and only once a second of it
// has passed: never the absurd rate of a first jump (read-ahead, sparse
// regions skipped at once).
type Progress struct {
	mu    sync.Mutex
	on    bool
	w     io.Writer
	label string
	total int64
	done  int64
	start time.Time
	drawn time.Time
	// samples of (time, done) over the last seconds, for the speed
	samples []sample
	width   int // of the last line drawn, to clear it
}

type sample struct {
	t    time.Time
	done int64
}

// NewProgress returns a progress display; enabled false (or stderr not a
// terminal) makes every method a no-op.
func NewProgress(enabled bool) *Progress {
	return &Progress{on: enabled && IsTerminal(os.Stderr), w: os.Stderr}
}

// Start begins a phase of total bytes (0: unknown).
func (p *Progress) Start(label string, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.label, p.total, p.done = label, total, 0
	p.start, p.drawn = time.Now(), time.Time{}
	p.samples = p.samples[:0]
	p.draw(p.start)
}

// Set updates the current phase: done of total bytes (total 0 keeps the
// total given before).
func (p *Progress) Set(done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if total > 0 {
		p.total = total
	}
	p.done = done
	now := time.Now()
	if now.Sub(p.drawn) >= 100*time.Millisecond {
		p.draw(now)
	}
}

// Done removes the line.
func (p *Progress) Done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.label = ""
}

// speedWindow is how far back the speed is measured.
const speedWindow = 3 * time.Second

// rate returns the bytes per second over the last seconds, or -1 while it
// cannot tell: the first second of a phase is not measured at all (its
// jumps are read-ahead and skipped regions, not speed).
func (p *Progress) rate(now time.Time) float64 {
	if now.Sub(p.start) < time.Second {
		return -1
	}
	p.samples = append(p.samples, sample{now, p.done})
	for len(p.samples) > 2 && now.Sub(p.samples[1].t) >= speedWindow {
		p.samples = p.samples[1:]
	}
	first := p.samples[0]
	if now.Sub(first.t) < 500*time.Millisecond {
		return -1
	}
	return float64(p.done-first.done) / now.Sub(first.t).Seconds()
}

func (p *Progress) draw(now time.Time) {
	p.drawn = now
	line := Safe(p.label)
	if p.total > 0 {
		frac := min(1, max(0, float64(p.done)/float64(p.total)))
		const bar = 24
		n := int(frac * bar)
		line += fmt.Sprintf(" [%s%s] %3.0f%% %s/%s", strings.Repeat("=", n), strings.Repeat(" ", bar-n), 100*frac, Bytes(p.done), Bytes(p.total))
	} else if p.done > 0 {
		line += " " + Bytes(p.done)
	}
	if r := p.rate(now); r > 0 {
		line += fmt.Sprintf(" %s/s", Bytes(int64(r)))
		if p.total > p.done {
			eta := time.Duration(float64(p.total-p.done) / r * float64(time.Second)).Round(time.Second)
			line += fmt.Sprintf(" %s left", eta)
		}
	}
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 1 && len(line) >= w {
		line = line[:w-1]
	}
	pad := ""
	if len(line) < p.width {
		pad = strings.Repeat(" ", p.width-len(line))
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.width = len(line)
}

// clear erases the line drawn last.
func (p *Progress) clear() {
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// Bytes formats a byte count for humans: "10.0 GiB", "512 B".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Fprintf writes to w, ignoring errors (for human output).
func Fprintf(w io.Writer, format string, args ...any) { fmt.Fprintf(w, format, args...) }
