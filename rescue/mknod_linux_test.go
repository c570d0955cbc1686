package rescue

import "golang.org/x/sys/unix"

// mknod makes a block device node and a FIFO (needs root).
func mknod(dev, fifo string) error {
	if err := unix.Mknod(dev, unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0))); err != nil {
		return err
	}
	return unix.Mkfifo(fifo, 0o644)
}
