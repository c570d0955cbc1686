package testimg

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// measuredWith are the versions of the tools that build test images and
// archives in which the tests' measured numbers (recovery floors after
// damage at fixed places) hold: Debian 12's. Other versions make other
// bytes (another zstd lays out its blocks differently), so those numbers
// need not hold there; what must hold everywhere (no wrong byte outside
// the reported damage) does not depend on them.
var measuredWith = []struct{ tool, flag, want string }{
	{"mke2fs", "-V", "mke2fs 1.47.0"},
	{"mkfs.xfs", "-V", "mkfs.xfs version 6.1.0"},
	{"sgdisk", "--version", "GPT fdisk (sgdisk) version 1.0.9"},
	{"zstd", "--version", "v1.5.4"},
}

// SameTools reports whether the tools here are the versions the tests'
// measured numbers come from, and if not, which one differs.
func SameTools(t testing.TB) (bool, string) {
	t.Helper()
	for _, m := range measuredWith {
		out, _ := exec.Command(testutil.RequireTool(t, m.tool), m.flag).CombinedOutput()
		if !strings.Contains(string(out), m.want) {
			first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			return false, fmt.Sprintf("%s is %q, the numbers were measured with %q", m.tool, first, m.want)
		}
	}
	return true, ""
}
