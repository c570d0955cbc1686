// Command mkdisk writes a deterministic disk-like image for benchmarks: runs
// of text, of structured binary data, of random (incompressible) bytes and
// of zeros, in proportions that zstd compresses about as much as a real
// guest's disk (about 3:1). Everything comes from the seed, nothing from
// the machine. -random changes the share of random runs (a disk of
// compressed media or encrypted files; 0 for a compressible one). It is a
// development tool, not part of vzsalvage.
//
//	go run ./scripts/mkdisk -size 1200M -seed 1 [-random 60] > disk.raw
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

func main() {
	sizeArg := flag.String("size", "1200M", "image size (suffix K, M or G)")
	seed := flag.Uint64("seed", 1, "content seed")
	random := flag.Int("random", 16, "percent of runs that are random (incompressible) bytes; the rest keeps the proportions of text, binary and zeros")
	flag.Parse()
	if *random < 0 || *random > 100 {
		fmt.Fprintln(os.Stderr, "mkdisk: -random must be 0..100")
		os.Exit(2)
	}
	size, err := parseSize(*sizeArg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdisk:", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	words := strings.Fields("the of and a to in is you that it he was for on are as with his they at be this have from " +
		"backup proxmox cluster volume inode extent journal config server mysql redis nginx kernel module user data " +
		"error warning info debug systemd network interface address route packet socket buffer memory process thread")
	buf := make([]byte, 4096*512)
	for left := size; left > 0; {
		n := min(int64(4096*(1+rng.IntN(512))), left)
		b := buf[:n]
		r := rng.IntN(100)
		if *random != 16 {
			// the other kinds keep their shares of what is not random
			if r = rng.IntN(84); r >= 62 {
				r += 16
			}
			if rng.IntN(100) < *random {
				r = 70
			}
		}
		switch {
		case r < 40: // text
			p := 0
			for p < len(b) {
				w := words[rng.IntN(len(words))]
				if rng.IntN(10) == 0 {
					w += "\n"
				} else {
					w += " "
				}
				p += copy(b[p:], w)
			}
		case r < 62: // structured binary: small integers, repeated records
			for i := 0; i < len(b); i += 16 {
				v := rng.Uint64() & 0x000f00ff000000ff
				for j := 0; j < 16 && i+j < len(b); j++ {
					b[i+j] = byte(v >> (8 * (j % 8)))
				}
			}
		case r < 78: // compressed or encrypted content
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		default: // free space
			clear(b)
		}
		if _, err := w.Write(b); err != nil {
			fmt.Fprintln(os.Stderr, "mkdisk:", err)
			os.Exit(1)
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mkdisk:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
