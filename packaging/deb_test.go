// Package packaging holds what the Debian package is built from
// (scripts/build-deb.sh) and the test that installs it.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebInstalls builds the .deb from this checkout, installs it with
// apt, uses what it installed (the binary's version, a man page, bash
// completion, the sample rescue) and removes it again, leaving nothing.
// It needs root and dpkg, and is skipped where vzsalvage is installed
// already (it will not touch an admin's own installation).
func TestDebInstalls(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing a package needs root")
	}
	testutil.RequireTool(t, "dpkg-deb")
	testutil.RequireTool(t, "man")
	if err := exec.Command("dpkg", "-s", "vzsalvage").Run(); err == nil {
		t.Skip("vzsalvage is installed on this machine already")
	}
	root := testutil.Root()
	dist := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "scripts", "build-deb.sh"), "amd64")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "vzsalvage_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("built %v", debs)
	}
	if _, err := exec.LookPath("lintian"); err == nil {
		if out, err := exec.Command("lintian", "--fail-on", "error,warning", debs[0]).CombinedOutput(); err != nil {
			t.Errorf("lintian: %v\n%s", err, out)
		}
	}
	// apt as the README says, waiting for the dpkg lock if another
	// installation holds it
	lock := "-oDPkg::Lock::Timeout=300"
	sh(t, "apt-get", "install", "-y", "-q", lock, debs[0])
	defer func() {
		sh(t, "apt-get", "purge", "-y", "-q", lock, "vzsalvage")
		for _, p := range []string{"/usr/bin/vzsalvage", "/usr/share/doc/vzsalvage", "/usr/lib/vzsalvage", "/usr/share/man/man1/vzsalvage.1.gz",
			"/usr/share/bash-completion/completions/vzsalvage"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s is left after dpkg --purge", p)
			}
		}
	}()
	if v := sh(t, "/usr/bin/vzsalvage", "--version"); !strings.Contains(v, "0.") || strings.Contains(v, "dev") {
		t.Errorf("--version: %q", v)
	}
	if fi, err := os.Stat("/usr/lib/vzsalvage/vzdump-hook"); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("the vzdump hook script: %v", err)
	}
	if p := sh(t, "man", "-w", "vzsalvage-rescue"); !strings.Contains(p, "vzsalvage-rescue.1") {
		t.Errorf("man -w: %q", p)
	}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err == nil {
		got := sh(t, "bash", "-c", `source /usr/share/bash-completion/bash_completion
source /usr/share/bash-completion/completions/vzsalvage
COMP_WORDS=(vzsalvage res); COMP_CWORD=1; COMP_LINE="vzsalvage res"; COMP_POINT=${#COMP_LINE}
__start_vzsalvage vzsalvage res vzsalvage; echo "${COMPREPLY[@]}"`)
		if !strings.Contains(got, "rescue") {
			t.Errorf("bash completion of 'vzsalvage res': %q", got)
		}
	}
	out := filepath.Join(t.TempDir(), "rescue")
	c := exec.Command("/usr/bin/vzsalvage", "rescue", "-q", filepath.Join(root, "sample", "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst"), "-o", out)
	if b, _ := c.CombinedOutput(); c.ProcessState.ExitCode() != 1 || !strings.HasPrefix(string(b), "damaged:") {
		t.Errorf("sample rescue: exit %d\n%s", c.ProcessState.ExitCode(), b)
	}
}
