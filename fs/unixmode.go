package fs

import iofs "io/fs"

// UnixMode converts a Linux st_mode (type bits, permissions, setuid,
// setgid, sticky) to an io/fs FileMode. Unknown type bits give
// ModeIrregular.
func UnixMode(m uint32) iofs.FileMode {
	mode := iofs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= iofs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= iofs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= iofs.ModeSticky
	}
	switch m & 0o170000 {
	case 0o100000:
	case 0o040000:
		mode |= iofs.ModeDir
	case 0o120000:
		mode |= iofs.ModeSymlink
	case 0o020000:
		mode |= iofs.ModeDevice | iofs.ModeCharDevice
	case 0o060000:
		mode |= iofs.ModeDevice
	case 0o010000:
		mode |= iofs.ModeNamedPipe
	case 0o140000:
		mode |= iofs.ModeSocket
	default:
		mode |= iofs.ModeIrregular
	}
	return mode
}
