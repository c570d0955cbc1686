package doctor

import (
	"regexp"
	"strings"
)

// The kernel log comes in several shapes; splitLine takes off whatever
// prefix a tool put before the kernel's own message:
//
//	journalctl -k:            Dec 15 03:12:45 pve kernel: MSG
//	journalctl -k -o short-iso: 2025-12-15T03:12:45+0800 pve kernel: MSG
//	rsyslog /var/log/kern.log: 2025-12-15T03:12:45.123456+08:00 pve kernel: [  123.456789] MSG
//	dmesg:                    [  123.456789] MSG
//	dmesg -T:                 [Mon Dec 15 03:12:45 2025] MSG
//	dmesg --time-format iso:  2025-12-15T03:12:45,123456+08:00 MSG
//	dmesg -x:                 kern  :err   : [  123.456789] MSG
//	journalctl -o short-monotonic: [  123.456789] pve kernel: MSG
var (
	levelPrefix = regexp.MustCompile(`^[a-z0-9]+\s*:\s*(?:emerg|alert|crit|err|warn|notice|info|debug)\s*: ?`)
	isoStamp    = regexp.MustCompile(`^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+`)
	syslogStamp = regexp.MustCompile(`^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?)\s+`)
	ctimeStamp  = regexp.MustCompile(`^\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]\s*`)
	monoStamp   = regexp.MustCompile(`^\[\s*(\d+\.\d+)\]\s*`)
	noFraction  = regexp.MustCompile(`[.,]\d+`)
)

// maxLine is the longest kernel message kept (the kernel's own limit is
// about 1 KiB); longer lines are cut.
const maxLine = 4096

// splitLine returns the time stamp of a kernel log line as written, to
// the second ("" when it has none; "123 s after boot" for the kernel's
// own clock), and the kernel's message. ok is false for lines that are
// not kernel messages (journal markers, another program's line in a
// syslog file). The first byte picks the format, so that most lines meet
// a single expression.
func splitLine(line string) (stamp, msg string, ok bool) {
	line = strings.TrimRight(line, "\r\n ")
	if strings.HasPrefix(line, "-- ") || line == "" {
		return "", "", false
	}
	if c := line[0]; c >= 'a' && c <= 'z' {
		if loc := levelPrefix.FindStringIndex(line); loc != nil {
			line = line[loc[1]:]
		}
		if line == "" {
			return "", "", false
		}
	}
	tagged := false
	switch c := line[0]; {
	case c >= '0' && c <= '9':
		if m := isoStamp.FindStringSubmatchIndex(line); m != nil {
			raw := line[m[2]:m[3]]
			// dmesg --time-format iso writes a comma and no host or tag
			stamp, line, tagged = noFraction.ReplaceAllString(raw, ""), line[m[1]:], !strings.Contains(raw, ",")
		}
	case c >= 'A' && c <= 'Z':
		if m := syslogStamp.FindStringSubmatchIndex(line); m != nil {
			stamp, line, tagged = noFraction.ReplaceAllString(line[m[2]:m[3]], ""), line[m[1]:], true
		}
	case c == '[':
		if m := monoStamp.FindStringSubmatchIndex(line); m != nil {
			secs, _, _ := strings.Cut(line[m[2]:m[3]], ".")
			stamp, line = secs+" s after boot", line[m[1]:]
			// journalctl -o short-monotonic puts the host and tag after it
			if rest, ok := afterKernelTag(line); ok {
				line = rest
			}
		} else if m := ctimeStamp.FindStringSubmatchIndex(line); m != nil {
			stamp, line = line[m[2]:m[3]], line[m[1]:]
		}
	}
	if tagged {
		rest, ok := afterKernelTag(line)
		if !ok {
			return "", "", false
		}
		line = rest
		if m := monoStamp.FindStringIndex(line); m != nil {
			line = line[m[1]:]
		}
	}
	return stamp, line, true
}

// afterKernelTag takes "HOST kernel: " off a syslog or journal line; ok is
// false when the line is another program's ("HOST smartd[1203]: ").
func afterKernelTag(line string) (string, bool) {
	_, rest, found := strings.Cut(line, " ")
	if !found {
		return line, false
	}
	tag, msg, found := strings.Cut(rest, ": ")
	if !found || (tag != "kernel" && !strings.HasPrefix(tag, "kernel[")) {
		return line, false
	}
	return msg, true
}
