package xfs

import "fmt"

// Log record constants (libxfs/xfs_log_format.h).
const (
	logUnmountTrans = 0x20 // op header flag of the unmount record
	logMaxScan      = 2 << 30
)

// checkLog finds the last record written to the internal log and reports
// a problem unless it is an unmount record (the filesystem was not
// unmounted cleanly: changes in the log are not applied by this reader).
func (f *FS) checkLog() []string {
	s := f.sb
	if !f.fsbOK(s.logStart, uint64(s.logBlocks)) || s.logBlocks == 0 {
		return []string{"log location invalid: its state is unknown"}
	}
	start := f.fsbPos(s.logStart)
	size := min(int64(s.logBlocks)*f.bs, logMaxScan)
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var headCycle uint32
	headPos := int64(-1)
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		if err := f.readAt(buf[:n], start+off); err != nil {
			return []string{fmt.Sprintf("log unreadable: %v", err)}
		}
		for i := int64(0); i+512 <= n; i += 512 {
			h := buf[i:]
			if be.Uint32(h) != logRecordMagic {
				continue
			}
			cycle, ver := be.Uint32(h[4:]), be.Uint32(h[8:])
			lsn := be.Uint64(h[16:])
			if ver != 1 && ver != 2 || uint32(lsn>>32) != cycle || int64(uint32(lsn)) != (off+i)/512 {
				continue
			}
			if headPos < 0 || cycle > headCycle || cycle == headCycle && off+i > headPos {
				headCycle, headPos = cycle, off+i
			}
		}
	}
	if headPos < 0 {
		return []string{"log holds no record: its state is unknown"}
	}
	h := make([]byte, 1024)
	if err := f.readAt(h, start+headPos); err != nil {
		return []string{fmt.Sprintf("log unreadable: %v", err)}
	}
	extra := int64(0)
	if be.Uint32(h[8:]) == 2 {
		if sz := int64(be.Uint32(h[320:])); sz > 32768 {
			extra = (sz+32767)/32768 - 1
		}
	}
	op := make([]byte, 16)
	if err := f.readAt(op, start+(headPos+512+512*extra)%size); err != nil {
		return []string{fmt.Sprintf("log unreadable: %v", err)}
	}
	if be.Uint32(h[40:]) >= 1 && op[9]&logUnmountTrans != 0 {
		return nil
	}
	return []string{"the log is dirty (not unmounted cleanly): its changes are not applied, recent changes may be missing"}
}
