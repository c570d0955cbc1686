// Package ui is vzsalvage's terminal layer: progress bars on a terminal
// only, sizes for humans, and exit statuses.
package ui

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
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

// Progress draws one progress bar on stderr when it is a terminal, and
// nothing otherwise. It is safe for concurrent use.
type Progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
	on  bool
}

// NewProgress returns a progress display; enabled false (or stderr not a
// terminal) makes every method a no-op.
func NewProgress(enabled bool) *Progress {
	return &Progress{on: enabled && IsTerminal(os.Stderr)}
}

// Start begins a bar for a phase of total bytes.
func (p *Progress) Start(label string, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
}

// Set updates the current bar.
func (p *Progress) Set(done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	if total > 0 && p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	p.bar.Set64(done)
}

// Done removes the bar.
func (p *Progress) Done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Clear()
		p.bar = nil
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
