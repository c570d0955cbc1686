// Command mkvma writes a VMA archive of raw disk images to standard output,
// with clusters in QEMU's out-of-order runs, for benchmarks and the sample
// archive. It is a development tool, not part of vzsalvage.
//
//	go run ./scripts/mkvma IMAGE:DEVNAME... | zstd --threads=1 > vzdump-qemu-100-….vma.zst
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/vmagen"
	"github.com/vzsalvage/vzsalvage/vma"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkvma IMAGE:DEVNAME... > archive.vma")
		os.Exit(2)
	}
	var disks []vmagen.Disk
	for _, a := range os.Args[1:] {
		path, name, ok := strings.Cut(a, ":")
		if !ok {
			fmt.Fprintln(os.Stderr, "mkvma: argument must be IMAGE:DEVNAME:", a)
			os.Exit(2)
		}
		disks = append(disks, vmagen.Disk{Name: name, Path: path})
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	cfg := []vma.Config{{Name: "qemu-server.conf", Data: []byte(vmagen.Config)}}
	if _, err := vmagen.Write(w, disks, cfg, 1, time.Unix(1765767603, 0)); err != nil {
		fmt.Fprintln(os.Stderr, "mkvma:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mkvma:", err)
		os.Exit(1)
	}
}
