// Command gendisk writes a guest disk image generated from a seed
// (codec/codectest.Disk: text, machine-code-like binary, incompressible
// data and free space), the same on every machine, for the salvage
// measurements and benchmarks. A development tool.
//
//	go run ./scripts/gendisk [-seed N] SIZE_MIB > disk.raw
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/vzsalvage/vzsalvage/codec/codectest"
)

func main() {
	seed := flag.Uint64("seed", 1, "seed of the content")
	flag.Parse()
	mib, err := strconv.ParseInt(flag.Arg(0), 10, 64)
	if flag.NArg() != 1 || err != nil || mib <= 0 {
		fmt.Fprintln(os.Stderr, "usage: gendisk [-seed N] SIZE_MIB > disk.raw")
		os.Exit(2)
	}
	if err := codectest.WriteDisk(os.Stdout, *seed, mib<<20); err != nil {
		fmt.Fprintln(os.Stderr, "gendisk:", err)
		os.Exit(1)
	}
}
