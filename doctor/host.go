package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Host is where the doctor reads: a root directory and the commands it may
// run. Tests point Root at a fake tree and Run at canned outputs.
type Host struct {
	// Root is the directory that stands for "/": every file the doctor
	// reads (/proc, /sys, /etc, the storages' directories) is read under
	// it. "" means "/".
	Root string
	// Run runs read-only commands (journalctl, dmesg, smartctl, nvme); nil
	// runs nothing, and the checks that need a command are skipped.
	Run Runner
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Location is the zone of the times in vzdump's file names (default
	// time.Local).
	Location *time.Location
	// Statfs measures the filesystem holding a path (already under Root);
	// default: the operating system's statfs.
	Statfs func(path string) (Space, error)
	// ProbeTimeout bounds the wait for a storage's directory to answer
	// (default 20 s).
	ProbeTimeout time.Duration
}

// Space is the size of a filesystem and the room left in it.
type Space struct {
	Total int64 `json:"total"`
	Free  int64 `json:"free"` // available to unprivileged users
}

// Runner runs a command and returns its standard output. A command that
// ran but exited non-zero returns its output and an error; a command that
// is not installed returns ErrNotInstalled.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ErrNotInstalled is returned by a Runner for a command it cannot find.
var ErrNotInstalled = errors.New("not installed")

// ExecRunner runs commands on this machine, each within Timeout, keeping
// at most MaxOutput bytes of its output.
type ExecRunner struct {
	Timeout   time.Duration
	MaxOutput int64
}

// Run implements Runner.
func (e ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := lookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, ErrNotInstalled)
	}
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	limit := e.MaxOutput
	if limit <= 0 {
		limit = 64 << 20
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_COLORS=0")
	var out limitedBuffer
	out.max = limit
	var errb limitedBuffer
	errb.max = 4096
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(firstLine(errb.String()))
		if msg != "" {
			err = fmt.Errorf("%s: %v: %s", name, err, msg)
		} else {
			err = fmt.Errorf("%s: %w", name, err)
		}
	}
	return out.Bytes(), err
}

// lookPath finds a command on PATH or in the sbin directories, which a
// non-root PATH often lacks (smartctl lives in /usr/sbin).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// limitedBuffer keeps the first max bytes written and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int64
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - int64(b.Len()); room > 0 {
		if int64(len(p)) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func (h *Host) defaults() {
	if h.Root == "" {
		h.Root = "/"
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Location == nil {
		h.Location = time.Local
	}
	if h.Statfs == nil {
		h.Statfs = statfs
	}
	if h.ProbeTimeout <= 0 {
		h.ProbeTimeout = 20 * time.Second
	}
}

// path returns where the host's absolute path p is under Root.
func (h *Host) path(p string) string { return filepath.Join(h.Root, filepath.FromSlash(p)) }

// maxFile bounds what is read of one configuration or kernel file.
const maxFile = 4 << 20

// read returns the content of the host's file p (at most maxFile bytes).
func (h *Host) read(p string) ([]byte, error) {
	f, err := os.Open(h.path(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxFile))
}

// readString returns the trimmed content of a small file, "" if unreadable.
func (h *Host) readString(p string) string {
	b, err := h.read(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// exists reports whether the host's path p exists.
func (h *Host) exists(p string) bool {
	_, err := os.Stat(h.path(p))
	return err == nil
}

// maxDirEntries bounds the entries read from one directory.
const maxDirEntries = 200000

// readDir lists the host's directory p (at most maxDirEntries entries).
func (h *Host) readDir(p string) ([]os.DirEntry, error) {
	f, err := os.Open(h.path(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(maxDirEntries)
	if err == io.EOF {
		err = nil
	}
	return ents, err
}

func (h *Host) hostname() string {
	return h.readString("/etc/hostname")
}
