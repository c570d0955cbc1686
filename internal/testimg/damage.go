package testimg

import "math/rand/v2"

// Damager damages a copy of a stream the ways disks and RAM do.
type Damager struct {
	Name string
	Do   func(b []byte, rng *rand.Rand) []byte
}

// Damagers are the damage kinds the codec tests apply: a bit flip, a
// zeroed 4 KiB page, a garbage run (up to 600 bytes), truncation.
var Damagers = []Damager{
	{"bit flip", func(b []byte, rng *rand.Rand) []byte {
		b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		return b
	}},
	{"zeroed 4 KiB page", func(b []byte, rng *rand.Rand) []byte {
		p := rng.IntN(len(b)) &^ 4095
		clear(b[p:min(len(b), p+4096)])
		return b
	}},
	{"garbage run", func(b []byte, rng *rand.Rand) []byte {
		p := rng.IntN(len(b))
		for i := p; i < min(len(b), p+1+rng.IntN(600)); i++ {
			b[i] = byte(rng.Uint32())
		}
		return b
	}},
	{"truncation", func(b []byte, rng *rand.Rand) []byte {
		return b[:rng.IntN(len(b))]
	}},
}
