package extract

import (
	"sync"
	"time"

	"github.com/vzsalvage/vzsalvage/archive"
)

// startProgress calls fn every 200 ms with the archive's progress until the
// returned stop function is called (stop may be called more than once).
func startProgress(a *archive.Archive, fn func(done, total int64)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fn(a.Size, a.Size)
				return
			case <-t.C:
				fn(a.InputOffset(), a.Size)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}
