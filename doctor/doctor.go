// Package doctor checks a Proxmox VE host and its backup storages for the
// signs that come before a lost night: NVMe controllers that time out,
// disks that return errors, memory errors, USB disks that reset, network
// mounts that may lose writes silently, full or unmounted backup storages,
// and backups that are old or were never checked.
//
// Every check only reads: files under a root directory (the host's "/" or a
// copy of its /proc, /sys and /etc for tests) and the output of read-only
// commands (journalctl, dmesg, smartctl, nvme) through an injectable
// Runner. Each check adds ranked Findings with their evidence and the
// known fixes.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
)

// Severity ranks a finding.
type Severity int

// Severities, from least to most urgent.
const (
	Info Severity = iota
	Warning
	Critical
)

var severityNames = [...]string{"info", "warning", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes "info", "warning" or "critical".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads "info", "warning" or "critical".
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if string(b) == n {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}

// Finding is one thing the doctor noticed.
type Finding struct {
	Severity Severity `json:"severity"`
	// Kind is a stable identifier for scripts: "kernel.nvme",
	// "storage.not-mounted", "backup.old", ...
	Kind string `json:"kind"`
	// Subject is what it is about: "nvme0", "sda", "storage nfs_usb_4t",
	// "VM 100"; "" for the host as a whole.
	Subject string `json:"subject,omitempty"`
	// Title is one line for a human.
	Title string `json:"title"`
	// Detail holds more lines of explanation or facts.
	Detail []string `json:"detail,omitempty"`
	// Events counts the kernel-log messages of a kernel finding by kind,
	// with the time stamps of the first and the last.
	Events []Event `json:"events,omitempty"`
	// Evidence holds a few of the log lines (or file facts) it rests on.
	Evidence []string `json:"evidence,omitempty"`
	// Fixes says what is known to help, hedged where it may not.
	Fixes []string `json:"fixes,omitempty"`
}

// Event counts one kind of kernel message in a finding.
type Event struct {
	What  string `json:"what"`
	Count int    `json:"count"`
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`
}

// Check records whether one check ran, and why not when it did not.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "ran", "skipped" or "failed"
	Note   string `json:"note,omitempty"`
}

// Report is everything one run of the doctor found.
type Report struct {
	Root     string    `json:"root"`
	Hostname string    `json:"hostname,omitempty"`
	Time     time.Time `json:"time"`
	// Status is the highest severity found: "ok" (nothing above info),
	// "warning" or "critical".
	Status     string          `json:"status"`
	Counts     map[string]int  `json:"counts"`
	Checks     []Check         `json:"checks"`
	KernelLogs []LogSummary    `json:"kernel_logs"`
	Kernel     KernelParams    `json:"kernel"`
	NVMe       []Controller    `json:"nvme"`
	Disks      []DiskHealth    `json:"disks,omitempty"`
	Storages   []StorageStatus `json:"storages"`
	Findings   []Finding       `json:"findings"`
}

// Highest returns the highest severity among the findings (Info when none).
func (r *Report) Highest() Severity {
	h := Info
	for _, f := range r.Findings {
		if f.Severity > h {
			h = f.Severity
		}
	}
	return h
}

// Options say what to check beyond the defaults.
type Options struct {
	// KernelLogs are saved kernel logs (dmesg or journalctl -k output, or
	// a syslog kern.log) to read instead of the running kernel's.
	KernelLogs []string
	// MaxAge is the age beyond which a guest's newest backup is a warning
	// (default 48 h).
	MaxAge time.Duration
	// SidecarDir is where vzsalvage sidecars are kept when not beside the
	// archives (protect --sidecar-dir).
	SidecarDir string
	// Protection says what vzsalvage knows of an archive's last check;
	// nil means SidecarByMtime(SidecarDir under the root).
	Protection ProtectionFunc
}

// ErrNoRoot is returned when the root directory cannot be read.
var ErrNoRoot = errors.New("root directory not readable")

// Run performs every check. Its error is for what stops the doctor from
// running at all (the root or a named kernel log unreadable); everything
// else becomes a Finding or a skipped Check.
func Run(ctx context.Context, h *Host, opt Options) (*Report, error) {
	h.defaults()
	if st, err := os.Stat(h.Root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNoRoot, h.Root)
	}
	for _, p := range opt.KernelLogs {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("kernel log: %w", err)
		}
		f.Close()
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 48 * time.Hour
	}
	if opt.Protection == nil {
		dir := ""
		if opt.SidecarDir != "" {
			dir = h.path(opt.SidecarDir)
		}
		opt.Protection = SidecarByMtime(dir)
	}
	r := &Report{Root: h.Root, Time: h.Now(), Counts: map[string]int{"critical": 0, "warning": 0, "info": 0}}
	r.Hostname = h.hostname()

	r.Kernel = readKernelParams(h)
	r.NVMe = readControllers(h)
	logs := readKernelLogs(ctx, h, opt, r)
	kf := kernelFindings(logs, r.Kernel, r.NVMe)
	r.Findings = append(r.Findings, kf...)
	r.Findings = append(r.Findings, kernelParamFindings(r.Kernel, r.NVMe, hasKind(kf, "kernel.nvme", Critical))...)
	r.Findings = append(r.Findings, controllerFindings(r.NVMe)...)
	r.Disks = readHealth(ctx, h, r)
	r.Findings = append(r.Findings, healthFindings(r.Disks)...)
	r.Findings = append(r.Findings, checkStorages(h, opt, r)...)

	// empty lists, not null, in the JSON
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.KernelLogs == nil {
		r.KernelLogs = []LogSummary{}
	}
	if r.NVMe == nil {
		r.NVMe = []Controller{}
	}
	if r.Storages == nil {
		r.Storages = []StorageStatus{}
	}
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Severity > r.Findings[j].Severity })
	for _, f := range r.Findings {
		r.Counts[f.Severity.String()]++
	}
	switch r.Highest() {
	case Critical:
		r.Status = "critical"
	case Warning:
		r.Status = "warning"
	default:
		r.Status = "ok"
	}
	return r, nil
}

// hasKind reports whether a finding of the kind is at least sev.
func hasKind(fs []Finding, kind string, sev Severity) bool {
	for _, f := range fs {
		if f.Kind == kind && f.Severity >= sev {
			return true
		}
	}
	return false
}

func (r *Report) check(name, status, note string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: status, Note: note})
}
