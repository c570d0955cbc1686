// Command cmpimg compares a recovered disk image with the original, 64 KiB
// cluster by cluster, for the salvage measurements: how many non-zero
// clusters came back identical, and (given a damage.json) how many differ
// although outside the reported damage. A development tool.
//
//	go run ./scripts/cmpimg ORIGINAL RECOVERED [DAMAGE.json DEVICE]
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/report"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: cmpimg ORIGINAL RECOVERED [DAMAGE.json DEVICE]")
		os.Exit(2)
	}
	orig, err := os.Open(os.Args[1])
	check(err)
	got, err := os.Open(os.Args[2])
	check(err)
	var dm *damage.Map
	if len(os.Args) == 5 {
		rep, err := report.ReadFile(os.Args[3])
		check(err)
		for _, d := range rep.Devices {
			if d.Name == os.Args[4] {
				dm = d.Damage
			}
		}
	}
	a, b := make([]byte, 65536), make([]byte, 65536)
	var total, same, wrong, reported int64
	for off := int64(0); ; off += 65536 {
		n, err := io.ReadFull(orig, a)
		if n == 0 {
			break
		}
		m, _ := io.ReadFull(got, b[:n])
		clear(b[m:n])
		eq := bytes.Equal(a[:n], b[:n])
		inDamage := dm.Any(off, int64(n), damage.Tainted)
		if inDamage {
			reported++
		}
		if !eq && dm != nil {
			for i := 0; i < n; i++ {
				if a[i] != b[i] && !dm.Any(off+int64(i), 1, damage.Tainted) {
					wrong++
					break
				}
			}
		}
		if !bytes.Equal(a[:n], make([]byte, n)) {
			total++
			if eq {
				same++
			}
		}
		if err != nil {
			break
		}
	}
	fmt.Printf("non-zero clusters identical: %d of %d (%.3f%%)", same, total, 100*float64(same)/float64(max(total, 1)))
	if dm != nil {
		fmt.Printf("; touching reported damage: %d; with a byte differing outside it: %d", reported, wrong)
	}
	fmt.Println()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmpimg:", err)
		os.Exit(2)
	}
}
