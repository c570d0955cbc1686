// Command memcurve verifies (or extracts) a backup as vzsalvage does and
// prints the live heap (after a forced GC) every -every MiB of the archive
// read, and the peak heap in use: whether what a read keeps grows with the
// archive's length. It is a development tool, not part of vzsalvage.
//
//	go run ./scripts/memcurve [-every 64] [-o DIR] [-map] [-heap FILE] ARCHIVE
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/vzsalvage/vzsalvage/extract"
)

func main() {
	every := flag.Int64("every", 64, "MiB of archive between samples")
	out := flag.String("o", "", "extract into this directory (default: verify)")
	withMap := flag.Bool("map", false, "keep the stream map, as rescue does")
	heap := flag.String("heap", "", "write a heap profile at the sample with the largest live heap here")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: memcurve [-every MiB] [-o DIR] [-map] ARCHIVE")
		os.Exit(2)
	}
	var (
		mu   sync.Mutex
		next int64
		peak uint64
		most uint64
	)
	stop := make(chan struct{})
	go func() { // the heap in use, sampled
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
		}
	}()
	opt := extract.Options{Map: *withMap, Progress: func(done, total int64) {
		if done < next {
			return
		}
		next = done + *every<<20
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("%6d MiB of %d: live heap %6.1f MiB, %d objects\n", done>>20, total>>20, float64(ms.HeapAlloc)/(1<<20), ms.HeapObjects)
		if *heap != "" && ms.HeapAlloc > most {
			most = ms.HeapAlloc
			if f, err := os.Create(*heap); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}}
	var err error
	var res *extract.Result
	if *out != "" {
		res, err = extract.Extract(flag.Arg(0), *out, opt)
	} else {
		res, err = extract.Verify(flag.Arg(0), opt)
	}
	close(stop)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memcurve:", err)
		os.Exit(1)
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mu.Lock()
	fmt.Printf("end: live heap %.1f MiB (the result: %d problems kept of %d, %d device damage ranges); peak heap in use %.1f MiB\n",
		float64(ms.HeapAlloc)/(1<<20), len(res.Report.Archives[0].Problems), res.Report.Archives[0].ProblemCount, ranges(res), float64(peak)/(1<<20))
	mu.Unlock()
}

func ranges(r *extract.Result) int {
	n := 0
	for _, d := range r.Report.Devices {
		n += d.Damage.Len()
	}
	return n
}
