//go:build !linux

package rescue

import "os"

// noData reports whether bytes [off, off+n) of a sparse image hold no data;
// without SEEK_DATA it cannot tell, and says no.
func noData(f *os.File, off, n int64) bool { return false }
