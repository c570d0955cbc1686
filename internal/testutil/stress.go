package testutil

import (
	"os"
	"strconv"
	"testing"
)

// Stress returns the seeds an offline stress test runs, [first, first+n),
// from VZSALVAGE_STRESS (n) and VZSALVAGE_STRESS_SEED (first, default 0),
// and skips the test when VZSALVAGE_STRESS is not set.
func Stress(t testing.TB) (first, end uint64) {
	t.Helper()
	n, err := strconv.ParseUint(os.Getenv("VZSALVAGE_STRESS"), 10, 64)
	if err != nil || n == 0 {
		t.Skip("VZSALVAGE_STRESS not set")
	}
	first, _ = strconv.ParseUint(os.Getenv("VZSALVAGE_STRESS_SEED"), 10, 64)
	return first, first + n
}
