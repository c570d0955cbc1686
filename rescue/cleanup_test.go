package rescue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// cancelAt cancels a context when a phase whose name starts with prefix
// begins.
type cancelAt struct {
	prefix string
	cancel func()
}

func (c cancelAt) Phase(name string, total int64) {
	if strings.HasPrefix(name, c.prefix) {
		c.cancel()
	}
}
func (cancelAt) Set(done, total int64) {}

// TestInterruptRemovesOutputs: a rescue interrupted in any phase leaves
// nothing of itself in DIR (and keeps what else was there).
func TestInterruptRemovesOutputs(t *testing.T) {
	arc := filepath.Join(testutil.Root(), "sample", "vzdump-qemu-100-2025_12_15-03_00_03.vma.zst")
	for _, phase := range []string{"read", "volumes", "copy"} {
		for _, existing := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "out")
			if existing {
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "mine"), []byte("x"), 0o644)
			}
			ctx, cancel := context.WithCancel(context.Background())
			_, err := Run(arc, dir, Options{Force: true, Context: ctx, Progress: cancelAt{phase, cancel}})
			cancel()
			if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "removed") {
				t.Errorf("%s: %v", phase, err)
			}
			ents, _ := os.ReadDir(dir)
			switch {
			case existing && (len(ents) != 1 || ents[0].Name() != "mine"):
				t.Errorf("%s: %d entries left beside the user's file", phase, len(ents))
			case !existing && !os.IsNotExist(statErr(dir)):
				t.Errorf("%s: %s left behind (%d entries)", phase, dir, len(ents))
			}
		}
	}
}

func statErr(p string) error {
	_, err := os.Stat(p)
	return err
}
