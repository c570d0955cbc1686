//go:build !linux

package protect

// bigBytes returns n zero bytes (see the Linux version).
func bigBytes(n int) (b []byte, free func()) { return make([]byte, n), func() {} }
