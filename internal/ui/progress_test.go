package ui

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressNoAbsurdSpeed: a first jump (read-ahead, skipped sparse
// regions) shows no speed; a steady phase shows its real one.
func TestProgressNoAbsurdSpeed(t *testing.T) {
	var b bytes.Buffer
	p := &Progress{on: true, w: &b}
	p.Start("extract \x1b[2Jx", 1<<40)
	t0 := p.start
	p.done = 700 << 30 // 700 GiB "done" in the first millisecond
	p.draw(t0.Add(time.Millisecond))
	if strings.Contains(b.String(), "/s") {
		t.Errorf("a speed in the first second: %q", b.String())
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("a raw escape from the label: %q", b.String())
	}
	// then 100 MiB/s for three seconds
	for i := 1; i <= 30; i++ {
		p.done = 700<<30 + int64(i)*10<<20
		p.draw(t0.Add(time.Duration(i) * 100 * time.Millisecond))
	}
	last := b.String()[strings.LastIndex(b.String(), "\r")+1:]
	if !strings.Contains(last, "100.0 MiB/s") && !strings.Contains(last, "99.") {
		t.Errorf("steady speed: %q", last)
	}
}
