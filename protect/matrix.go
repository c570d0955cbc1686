package protect

import "github.com/klauspost/reedsolomon"

// newRS returns the Reed-Solomon code of a layout: reedsolomon's default
// code (a Vandermonde matrix made systematic), with its parity rows
// computed here in O(k²) instead of by inverting a k×k matrix (reedsolomon.New
// takes 60 ms for 250 data shards, before protect can start reading).
func newRS(k, m int) (reedsolomon.Encoder, error) {
	if k < 1 || m < 1 || k+m > 256 {
		return reedsolomon.New(k, m) // (its error)
	}
	return reedsolomon.New(k, m, reedsolomon.WithCustomMatrix(parityRows(k, m)))
}

// parityRows returns the parity rows of reedsolomon's default matrix for k
// data and m parity shards. That matrix is V·T⁻¹, V the Vandermonde matrix
// of the points 0…k+m-1 (row x: 1, x, x², …) and T its top k rows: row x of
// it holds the coefficients that give the polynomial of degree < k through
// the data at the points 0…k-1 its value at x, that is, entry j is the
// Lagrange basis polynomial of point j at x: ∏_{i≠j} (x-i)/(j-i).
func parityRows(k, m int) [][]byte {
	rows := make([][]byte, m)
	for r := range rows {
		x := byte(k + r)
		all := byte(1) // ∏_i (x-i), x not among the points
		for i := 0; i < k; i++ {
			all = gfMul(all, x^byte(i))
		}
		row := make([]byte, k)
		for j := range row {
			den := byte(1)
			for i := 0; i < k; i++ {
				if i != j {
					den = gfMul(den, byte(j)^byte(i))
				}
			}
			row[j] = gfDiv(all, gfMul(den, x^byte(j)))
		}
		rows[r] = row
	}
	return rows
}

// GF(2^8) with reedsolomon's field polynomial x⁸+x⁴+x³+x²+1 (0x11d) and
// generator 2.
var gfExp, gfLog = func() (exp [510]byte, log [256]byte) {
	v := 1
	for i := 0; i < 255; i++ {
		exp[i], exp[i+255] = byte(v), byte(v)
		log[v] = byte(i)
		v <<= 1
		if v&0x100 != 0 {
			v ^= 0x11d
		}
	}
	return
}()

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// gfDiv returns a/b (b ≠ 0).
func gfDiv(a, b byte) byte {
	if a == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+255-int(gfLog[b])]
}
