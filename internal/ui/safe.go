package ui

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Strings from a backup (device and config names, guest file names, labels,
// symlink targets, config text) are the guest's: a hostile guest can put
// terminal escape sequences or fake lines in them. Everything vzsalvage
// prints for humans goes through a SafeWriter, and single names through
// Safe, so that they are shown, never obeyed.

// Safe returns s with every character that could act on a terminal or break
// a line shown as an escape: C0 and C1 controls including newline and tab
// (`\n`, `\x1b`), DEL, Unicode format characters such as bidirectional
// overrides (`\u202e`), and bytes that are not UTF-8 (`\xff`). A backslash
// is doubled only when s needs escaping at all, so ordinary names print
// unchanged.
func Safe(s string) string { return escape(s, false) }

// SafeText is Safe for multi-line text (a config file): newlines and tabs
// are kept.
func SafeText(s string) string { return escape(s, true) }

func escape(s string, text bool) string {
	if clean(s, text) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case text && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clean reports whether s prints as itself.
func clean(s string, text bool) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || unsafeRune(r) && !(text && (r == '\n' || r == '\t')) {
			return false
		}
		i += n
	}
	return true
}

// unsafeRune reports control and format characters (Cc, Cf: C0, DEL, C1,
// bidi controls, zero-width characters) and line/paragraph separators.
func unsafeRune(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// SafeWriter passes text to w with every control character other than
// newline and tab escaped (see Safe): the last line of defence for
// everything printed to a terminal. JSON output stays valid: encoding/json
// already escapes C0 controls, and the others are written as \uXXXX.
type SafeWriter struct{ W io.Writer }

// Write escapes p and writes it; it reports len(p) on success.
func (s SafeWriter) Write(p []byte) (int, error) {
	str := string(p)
	if clean(str, true) {
		return s.W.Write(p)
	}
	var b strings.Builder
	for i := 0; i < len(str); {
		r, n := utf8.DecodeRuneInString(str[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, str[i])
		case r == '\n' || r == '\t' || !unsafeRune(r):
			b.WriteString(str[i : i+n])
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	if _, err := io.WriteString(s.W, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
