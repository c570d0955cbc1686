package rescue

import "testing"

// TestAgreeCacheBounded: the donor's agreement cache never holds more than
// maxAgree answers, and the answers it holds are the ones given.
func TestAgreeCacheBounded(t *testing.T) {
	var c agreeCache
	for i := int64(0); i < int64(3*maxAgree+7); i++ {
		c.put([2]int64{i % 3, i}, i%5 == 0)
		if len(c.m) > maxAgree {
			t.Fatalf("%d answers kept, more than %d", len(c.m), maxAgree)
		}
		if ok, seen := c.get([2]int64{i % 3, i}); !seen || ok != (i%5 == 0) {
			t.Fatalf("cluster %d: got %v %v just after putting it", i, ok, seen)
		}
	}
	for k, ok := range c.m {
		if ok != (k[1]%5 == 0) {
			t.Fatalf("cluster %d: a wrong answer kept", k[1])
		}
	}
}
