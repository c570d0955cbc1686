package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// LogSummary says which kernel log was read and what it spans.
type LogSummary struct {
	Source string `json:"source"`
	// Boot is "this boot" or "previous boot" for the running host's
	// journal, "" for a saved log.
	Boot     string `json:"boot,omitempty"`
	Lines    int    `json:"lines"`
	Messages int    `json:"messages"` // kernel messages among the lines
	First    string `json:"first,omitempty"`
	Last     string `json:"last,omitempty"`
}

// logScan is what one kernel log held: its findings-to-be, grouped by kind
// and subject in the order they first appeared.
type logScan struct {
	sum LogSummary
	// current is set for the running kernel's current boot.
	current bool
	groups  []*group
	byKey   map[string]*group
	usb     map[string]*usbPort
	// lastUSB is the port of the last device the log announced.
	lastUSB string
}

// group collects the events of one kind about one subject.
type group struct {
	kind, subject string
	sev           Severity
	events        []*event
	byWhat        map[string]*event
}

type event struct {
	Event
	sev                 Severity
	firstLine, lastLine string
	firstNo, lastNo     int // line numbers in the log
}

// usbPort is what the log said about the device on a USB port.
type usbPort struct {
	vid, pid, product string
	storage           bool
}

// Bounds on what one log may grow in memory, whatever it holds.
const (
	maxGroups          = 500
	maxEventsPerGroup  = 40
	maxEvidence        = 8
	maxUSBPorts        = 256
	maxEvidenceLineLen = 300
)

// scanLog reads a kernel log and groups the messages the rules recognise.
func scanLog(r io.Reader, sum LogSummary) *logScan {
	s := &logScan{sum: sum, byKey: map[string]*group{}, usb: map[string]*usbPort{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(buf) < maxLine {
			buf = append(buf, chunk[:min(len(chunk), maxLine-len(buf))]...)
		}
		if isPrefix && err == nil {
			continue
		}
		if err == nil || len(buf) > 0 {
			s.line(string(buf))
		}
		buf = buf[:0]
		if err != nil {
			break
		}
	}
	return s
}

// line handles one line of the log.
func (s *logScan) line(raw string) {
	s.sum.Lines++
	stamp, msg, ok := splitLine(raw)
	if !ok {
		return
	}
	s.sum.Messages++
	if stamp != "" {
		if s.sum.First == "" {
			s.sum.First = stamp
		}
		s.sum.Last = stamp
	}
	if strings.HasPrefix(msg, "usb") || strings.HasPrefix(msg, "scsi host") {
		s.usbFact(msg)
	}
	for i := range rules {
		r := &rules[i]
		if !strings.Contains(msg, r.key) {
			continue
		}
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		ev, ok := r.event(m)
		if !ok {
			continue
		}
		s.add(r.kind, ev, stamp, strings.TrimSpace(raw))
		return
	}
}

func (s *logScan) usbFact(msg string) {
	port := func(p string) *usbPort {
		u := s.usb[p]
		if u == nil && len(s.usb) < maxUSBPorts {
			u = &usbPort{}
			s.usb[p] = u
		}
		return u
	}
	if m := usbIDs.FindStringSubmatch(msg); m != nil {
		if u := port(m[1]); u != nil {
			// a new device on the port: forget the old one's name
			*u = usbPort{vid: m[2], pid: m[3]}
		}
		s.lastUSB = m[1]
	} else if usbSCSIHost.MatchString(msg) && s.lastUSB != "" {
		if u := port(s.lastUSB); u != nil {
			u.storage = true
		}
	} else if m := usbProduct.FindStringSubmatch(msg); m != nil {
		if u := port(m[1]); u != nil {
			u.product = strings.TrimSpace(m[2])
		}
	} else if m := usbStorage.FindStringSubmatch(msg); m != nil {
		if u := port(m[1]); u != nil {
			u.storage = true
		}
	}
}

// add counts one matched line in its group.
func (s *logScan) add(kind string, ev matched, stamp, raw string) {
	key := kind + "\x00" + ev.subject
	g := s.byKey[key]
	if g == nil {
		if len(s.groups) >= maxGroups {
			return
		}
		g = &group{kind: kind, subject: ev.subject, byWhat: map[string]*event{}}
		s.groups = append(s.groups, g)
		s.byKey[key] = g
	}
	if ev.sev > g.sev {
		g.sev = ev.sev
	}
	if len(raw) > maxEvidenceLineLen {
		raw = raw[:maxEvidenceLineLen] + "…"
	}
	e := g.byWhat[ev.what]
	if e == nil {
		if len(g.events) >= maxEventsPerGroup {
			return
		}
		e = &event{Event: Event{What: ev.what, First: stamp}, sev: ev.sev, firstLine: raw, firstNo: s.sum.Lines}
		g.events = append(g.events, e)
		g.byWhat[ev.what] = e
	}
	e.Count += max(ev.n, 1)
	e.Last, e.lastLine, e.lastNo = stamp, raw, s.sum.Lines
}

// evidence returns a few of the group's lines, in the log's order: the
// first of each kind of event, and its last when there were more.
func (g *group) evidence() []string {
	type line struct {
		no   int
		text string
	}
	var lines []line
	for _, e := range g.events {
		if len(lines) >= maxEvidence {
			break
		}
		lines = append(lines, line{e.firstNo, e.firstLine})
		if e.lastNo != e.firstNo && len(lines) < maxEvidence {
			lines = append(lines, line{e.lastNo, e.lastLine})
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].no < lines[j].no })
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

// has reports whether the group holds an event whose label starts with p.
func (g *group) has(p string) bool {
	for _, e := range g.events {
		if strings.HasPrefix(e.What, p) {
			return true
		}
	}
	return false
}

// count returns the number of events whose label starts with p.
func (g *group) count(p string) int {
	n := 0
	for _, e := range g.events {
		if strings.HasPrefix(e.What, p) {
			n += e.Count
		}
	}
	return n
}

// Bound on the running journal's output: the newest lines are the ones
// that matter.
const journalLines = "300000"

// readKernelLogs reads the saved logs named in opt, or else the running
// kernel's (this boot and the previous one, from the journal; dmesg when
// there is no journal), or else, when no command may run (a --root tree),
// ROOT/var/log/kern.log.
func readKernelLogs(ctx context.Context, h *Host, opt Options, r *Report) []*logScan {
	var scans []*logScan
	done := func(s *logScan) {
		scans = append(scans, s)
		r.KernelLogs = append(r.KernelLogs, s.sum)
	}
	switch {
	case len(opt.KernelLogs) > 0:
		for _, p := range opt.KernelLogs {
			f, err := os.Open(p)
			if err != nil {
				r.check("kernel log", "failed", err.Error())
				continue
			}
			done(scanLog(f, LogSummary{Source: p}))
			f.Close()
		}
		r.check("kernel log", "ran", fmt.Sprintf("%d saved log(s)", len(opt.KernelLogs)))
	case h.Run != nil:
		args := []string{"-k", "-q", "--no-pager", "-o", "short-iso", "-n", journalLines, "-b"}
		out, err := h.Run.Run(ctx, "journalctl", append(args, "0")...)
		if s := scanLog(bytes.NewReader(out), LogSummary{Source: "journalctl -k -b 0", Boot: "this boot"}); err == nil && s.sum.Messages > 0 {
			s.current = true
			done(s)
			note := "this boot"
			out, err := h.Run.Run(ctx, "journalctl", append(args, "-1")...)
			if s := scanLog(bytes.NewReader(out), LogSummary{Source: "journalctl -k -b -1", Boot: "previous boot"}); err == nil && s.sum.Messages > 0 {
				done(s)
				note += " and the previous boot"
			} else {
				note += "; the previous boot is not in the journal (not persistent, or the first boot)"
			}
			r.check("kernel log", "ran", "journalctl: "+note)
			break
		}
		jerr := err
		out, err = h.Run.Run(ctx, "dmesg")
		if s := scanLog(bytes.NewReader(out), LogSummary{Source: "dmesg", Boot: "this boot"}); err == nil && s.sum.Messages > 0 {
			s.current = true
			done(s)
			r.check("kernel log", "ran", "dmesg, this boot only ("+errText(jerr, "journalctl")+")")
			break
		}
		r.check("kernel log", "failed", fmt.Sprintf("not readable (%s; %s): run as root, or save it and pass --kernel-log FILE", errText(jerr, "journalctl"), errText(err, "dmesg")))
	default:
		const kern = "/var/log/kern.log"
		f, err := os.Open(h.path(kern))
		if err != nil {
			r.check("kernel log", "skipped", "no command is run on a --root tree and it has no "+kern+": pass --kernel-log FILE")
			break
		}
		done(scanLog(f, LogSummary{Source: h.path(kern)}))
		f.Close()
		r.check("kernel log", "ran", kern+" of the root tree")
	}
	return scans
}

func errText(err error, name string) string {
	switch {
	case err == nil:
		return name + ": no kernel messages"
	case errors.Is(err, ErrNotInstalled):
		return name + " not installed"
	}
	return err.Error()
}

// kernelFindings turns the groups of every log read into findings.
func kernelFindings(scans []*logScan, kp KernelParams, ctrls []Controller) []Finding {
	var out []Finding
	for _, s := range scans {
		for _, g := range s.groups {
			f := Finding{Kind: "kernel." + g.kind, Subject: g.subject, Evidence: g.evidence()}
			for _, e := range g.events {
				f.Events = append(f.Events, e.Event)
			}
			a := advice{kp: kp, current: s.current, ctrls: ctrls, usb: s.usb}
			f.Title, f.Detail, f.Fixes = a.explain(g) // may lower g.sev
			f.Severity = g.sev
			if s.sum.Boot == "previous boot" {
				f.Title += " (previous boot)"
			}
			if s.sum.Boot == "" && len(scans) > 1 {
				f.Detail = append(f.Detail, "in "+s.sum.Source)
			}
			out = append(out, f)
		}
	}
	return out
}
