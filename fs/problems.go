package fs

import (
	"bytes"
	"fmt"
)

// MaxProblems bounds the problem messages a reader keeps for one object.
const MaxProblems = 32

// ProblemLog keeps the first MaxProblems messages and counts the rest, so
// that a damaged object cannot make a reader's report grow without bound.
type ProblemLog struct {
	msgs []string
	more int
}

// Add notes each message.
func (l *ProblemLog) Add(msgs ...string) {
	for _, m := range msgs {
		if len(l.msgs) < MaxProblems {
			l.msgs = append(l.msgs, m)
		} else {
			l.more++
		}
	}
}

// Addf notes a formatted message.
func (l *ProblemLog) Addf(format string, args ...any) {
	if len(l.msgs) < MaxProblems {
		l.msgs = append(l.msgs, fmt.Sprintf(format, args...))
	} else {
		l.more++
	}
}

// Count is the number of messages noted, kept or not.
func (l *ProblemLog) Count() int { return len(l.msgs) + l.more }

// List returns the messages kept, with a last one counting those left out.
func (l *ProblemLog) List() []string {
	if l.more > 0 {
		return append(l.msgs[:len(l.msgs):len(l.msgs)], fmt.Sprintf("... and %d more problems", l.more))
	}
	return l.msgs
}

// CString returns an on-disk name field up to its first NUL.
func CString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// FormatUUID writes a 16-byte on-disk UUID in its usual text form.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Summary is the first message, with how many more there were; "" when
// there is none.
func (l *ProblemLog) Summary() string {
	c := l.Count()
	if c == 0 {
		return ""
	}
	if c > 1 {
		return fmt.Sprintf("%s (and %d more problems)", l.msgs[0], c-1)
	}
	return l.msgs[0]
}
