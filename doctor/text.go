package doctor

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// textWidth is where the human report wraps its long lines.
const textWidth = 100

// WriteText writes the report for a human: the most urgent first, each
// finding with its events, evidence and what helps.
func (r *Report) WriteText(w io.Writer) {
	host := r.Hostname
	if host == "" {
		host = "(unknown host)"
	}
	fmt.Fprintf(w, "vzsalvage doctor: %s, %s", host, r.Time.Format("2006-01-02 15:04"))
	if r.Root != "/" {
		fmt.Fprintf(w, ", root %s", r.Root)
	}
	fmt.Fprintln(w)
	for _, l := range r.KernelLogs {
		fmt.Fprintf(w, "kernel log: %s", l.Source)
		if l.Boot != "" {
			fmt.Fprintf(w, " (%s)", l.Boot)
		}
		fmt.Fprintf(w, ", %d lines", l.Lines)
		if l.First != "" {
			fmt.Fprintf(w, ", %s to %s", l.First, l.Last)
		}
		fmt.Fprintln(w)
	}
	for _, f := range r.Findings {
		fmt.Fprintln(w)
		writeFinding(w, f)
	}
	fmt.Fprintln(w)
	var checks []string
	for _, c := range r.Checks {
		s := c.Name + " " + c.Status
		if c.Note != "" {
			s += " (" + c.Note + ")"
		}
		checks = append(checks, s)
	}
	wrap(w, "checks: ", "        ", strings.Join(checks, "; "))
	fmt.Fprintf(w, "%d critical, %d warning(s), %d info\n", r.Counts["critical"], r.Counts["warning"], r.Counts["info"])
}

func writeFinding(w io.Writer, f Finding) {
	const ind = "          "
	wrap(w, fmt.Sprintf("%-10s", strings.ToUpper(f.Severity.String())), ind, f.Title)
	width := 0
	for _, e := range f.Events {
		width = max(width, len(e.What))
	}
	for _, e := range f.Events {
		line := fmt.Sprintf("%6d× %-*s", e.Count, width, e.What)
		switch {
		case e.First == "":
		case e.First == e.Last || e.Count == 1:
			line += "  at " + e.First
		default:
			line += "  first " + e.First + ", last " + e.Last
		}
		fmt.Fprintln(w, ind[:4]+line)
	}
	for _, d := range f.Detail {
		wrap(w, ind, ind+"  ", d)
	}
	if len(f.Evidence) > 0 {
		fmt.Fprintln(w, ind+"evidence:")
		for _, e := range f.Evidence {
			fmt.Fprintln(w, ind+"  "+e)
		}
	}
	if len(f.Fixes) > 0 {
		fmt.Fprintln(w, ind+"what helps:")
		for _, x := range f.Fixes {
			wrap(w, ind+"- ", ind+"  ", x)
		}
	}
}

// wrap writes s after first, wrapping at textWidth with the next lines
// indented by rest.
func wrap(w io.Writer, first, rest, s string) {
	line := first
	n := 0
	for _, word := range strings.Fields(s) {
		if n > 0 && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > textWidth {
			fmt.Fprintln(w, line)
			line, n = rest, 0
		}
		if n > 0 {
			line += " "
		}
		line += word
		n++
	}
	fmt.Fprintln(w, line)
}
