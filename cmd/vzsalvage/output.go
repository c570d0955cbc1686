package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vzsalvage/vzsalvage/internal/ui"
)

// input is a file a command reads, which its output must never replace.
type input struct {
	path string
	// refuse says why not, e.g. "is the archive being repaired: use
	// --in-place to replace it".
	refuse string
}

// checkOutputFile refuses, before any work, an output file (-o) that would
// lose data or could only fail late: one of the command's inputs, an
// existing file without force, a directory, or a path whose directory does
// not exist.
func checkOutputFile(out string, force bool, inputs ...input) error {
	fail := func(format string, args ...any) error {
		return &exitError{code: ui.ExitFailed, err: fmt.Errorf(format, args...)}
	}
	dir := filepath.Dir(out)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fail("%s: the directory %s does not exist", out, dir)
	}
	st, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fail("%s: %v", out, err)
	case st.IsDir():
		return fail("%s is a directory: -o names the file to write", out)
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in.path); err == nil && os.SameFile(st, ist) {
			return fail("%s %s", out, in.refuse)
		}
	}
	if !force {
		return fail("%s exists (use --force to replace it)", out)
	}
	return nil
}
