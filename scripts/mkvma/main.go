// Command mkvma writes a VMA archive of raw disk images to standard output,
// with clusters in QEMU's out-of-order runs, for benchmarks and the sample
// archive. It is a development tool, not part of vzsalvage.
//
//	go run ./scripts/mkvma [-seed N] [-ctime UNIX] IMAGE:DEVNAME... | zstd --threads=1 > vzdump-qemu-100-….vma.zst
//
// -seed sets the header's UUID and the cluster order (another night's
// backup of the same disks has another), -ctime its creation time.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/vmagen"
	"github.com/vzsalvage/vzsalvage/vma"
)

func main() {
	seed := flag.Int64("seed", 1, "seed of the UUID and the cluster order")
	ctime := flag.Int64("ctime", 1765767603, "creation time (Unix seconds)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: mkvma [-seed N] [-ctime UNIX] IMAGE:DEVNAME... > archive.vma")
		os.Exit(2)
	}
	var disks []vmagen.Disk
	for _, a := range flag.Args() {
		path, name, ok := strings.Cut(a, ":")
		if !ok {
			fmt.Fprintln(os.Stderr, "mkvma: argument must be IMAGE:DEVNAME:", a)
			os.Exit(2)
		}
		disks = append(disks, vmagen.Disk{Name: name, Path: path})
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	cfg := []vma.Config{{Name: "qemu-server.conf", Data: []byte(vmagen.Config)}}
	if _, err := vmagen.Write(w, disks, cfg, *seed, time.Unix(*ctime, 0)); err != nil {
		fmt.Fprintln(os.Stderr, "mkvma:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mkvma:", err)
		os.Exit(1)
	}
}
