package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// want is a finding a test expects: its severity, kind and subject.
type want struct {
	sev     Severity
	kind    string
	subject string
}

func (w want) String() string { return fmt.Sprintf("%s %s %q", w.sev, w.kind, w.subject) }

// assertFindings checks that the findings are exactly the wanted ones.
func assertFindings(t *testing.T, got []Finding, wants ...want) {
	t.Helper()
	var g, w []string
	for _, f := range got {
		g = append(g, want{f.Severity, f.Kind, f.Subject}.String())
	}
	for _, x := range wants {
		w = append(w, x.String())
	}
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("findings:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

// find returns the finding of a kind and subject, failing the test if none.
func find(t *testing.T, fs []Finding, kind, subject string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Kind == kind && f.Subject == subject {
			return f
		}
	}
	t.Fatalf("no finding %s %q", kind, subject)
	return Finding{}
}

// wantEvents checks the counts of a finding's events (those listed).
func wantEvents(t *testing.T, f Finding, counts map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, e := range f.Events {
		got[e.What] = e.Count
	}
	for what, n := range counts {
		if got[what] != n {
			t.Errorf("%s %s: %d× %q, want %d (events %v)", f.Kind, f.Subject, got[what], what, n, got)
		}
	}
}

// fixesText joins a finding's fixes and details for substring checks.
func fixesText(f Finding) string {
	return strings.Join(append(append([]string{f.Title}, f.Detail...), f.Fixes...), "\n")
}

// runFunc is a Runner made of a function: tests answer commands with
// saved outputs.
type runFunc func(name string, args []string) ([]byte, error)

func (f runFunc) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	return f(name, args)
}

// noCommands answers every command "not installed".
var noCommands = runFunc(func(name string, _ []string) ([]byte, error) {
	return nil, fmt.Errorf("%s: %w", name, ErrNotInstalled)
})

// writeTree makes files (path -> content) under dir; a content starting
// with "->" makes a symbolic link to the rest.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// copyTree copies a testdata tree into a temporary directory (tests set
// modification times, which the checked-in files do not keep).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// touch sets a file's modification time.
func touch(t *testing.T, p string, when time.Time) {
	t.Helper()
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

// fixedSpace is a Statfs that reports the same room everywhere.
func fixedSpace(total, free int64) func(string) (Space, error) {
	return func(string) (Space, error) { return Space{Total: total, Free: free}, nil }
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, time.UTC)
	if err != nil {
		panic(err)
	}
	return t
}

// run runs the doctor on a tree with a fixed clock, UTC names and the
// given room on every storage.
func run(t *testing.T, root string, now time.Time, runner Runner, opt Options) *Report {
	t.Helper()
	h := &Host{Root: root, Run: runner, Now: func() time.Time { return now }, Location: time.UTC, Statfs: fixedSpace(4<<40, 1<<40)}
	r, err := Run(context.Background(), h, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
