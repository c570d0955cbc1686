package rescue

import (
	"os"

	"golang.org/x/sys/unix"
)

// noData reports whether bytes [off, off+n) of a sparse image hold no data
// at all (the backup stored nothing there: all zeros), by asking the host
// filesystem where the image's data lies.
func noData(f *os.File, off, n int64) bool {
	if n <= 0 {
		return false
	}
	next, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if err == unix.ENXIO {
		return true // no data at or after off
	}
	return err == nil && next >= off+n
}
