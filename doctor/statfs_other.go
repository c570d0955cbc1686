//go:build !linux

package doctor

import "errors"

// statfs is only implemented on Linux, where Proxmox VE runs.
func statfs(path string) (Space, error) {
	return Space{}, errors.New("free space is only measured on Linux")
}
