package protect

import "golang.org/x/sys/unix"

// bigBytes returns n zero bytes outside the Go heap, in transparent huge
// pages where the system allows them (madvise mode): the encoder's
// buffers, tens of MiB, written once each, cost a page fault per 4 KiB
// otherwise. free gives them back; nothing may use them after.
func bigBytes(n int) (b []byte, free func()) {
	const huge = 2 << 20
	m, err := unix.Mmap(-1, 0, n+huge, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), func() {}
	}
	unix.Madvise(m, unix.MADV_HUGEPAGE)
	return m[:n:n], func() { unix.Munmap(m) }
}
