// Package testutil holds helpers shared by vzsalvage's tests: finding the
// shared fixtures, requiring the real tools that build test images, and
// running them.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Root returns the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir returns the path of the team's shared directory: $VZSALVAGE_SHARED,
// or ../shared next to the repository, or /work/shared. A test that needs it
// is skipped when none exists (the product never needs it).
func SharedDir(t testing.TB) string {
	t.Helper()
	for _, d := range []string{os.Getenv("VZSALVAGE_SHARED"), filepath.Join(Root(), "..", "shared"), "/work/shared"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "fixtures")); err == nil {
			return d
		}
	}
	t.Skip("the shared fixtures (../shared) are not here")
	return ""
}

// Fixture returns the path of a file under ../shared/fixtures.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(SharedDir(t), "fixtures", name)
}

// RequireTool makes sure an external program (mke2fs, zstd, sgdisk, ...) is
// on PATH (or in /sbin, /usr/sbin) and returns its path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	missing(t, name+" not installed (the README's test command installs it)")
	return ""
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("VZSALVAGE_REQUIRE_TOOLS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// Run runs a program (looked up with RequireTool) and fails the test with
// its output if it fails. It returns standard output.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(RequireTool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C", "E2FSPROGS_FAKE_TIME=1700000000")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
	}
	return stdout.Bytes()
}
