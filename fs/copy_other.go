//go:build !linux

package fs

import "errors"

// Copy is not available on this system yet: it needs the *at system calls
// that keep writes inside the destination.
func Copy(f FS, src Node, srcPath string, dest string, opt CopyOptions) (*CopyStats, error) {
	return &CopyStats{}, errors.ErrUnsupported
}
