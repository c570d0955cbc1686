package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a pprof CPU profile of the whole run to the file named by the hidden
// environment variable VZSALVAGE_CPUPROFILE (a measuring aid, not part of the CLI contract);
// the returned function stops it. Without the variable it does nothing.
func startCPUProfile() (stop func()) {
	path := os.Getenv("VZSALVAGE_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vzsalvage: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "vzsalvage: cpu profile: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
