package archive

import (
	"io"
	"sync"

	"github.com/vzsalvage/vzsalvage/codec"
)

// direct is the read-ahead of Payload for a decoder that reads through
// FillAsync (zstd) when there are no taps: each FillAsync reads the file
// straight into the decoder's buffer on a goroutine of its own. Going
// through prefetch's chunks cost a copy of the whole file (28 ms of CPU a
// run on a 345 MiB archive); the kernel's read-ahead and the decoder's
// buffer (a read is under way into its free room while it decodes) keep
// the reads ahead of the decoder. Read reads synchronously.
type direct struct {
	r    io.Reader
	busy sync.WaitGroup // the FillAsync reads under way
}

// Read implements io.Reader. (The zstd decoder reads only through
// FillAsync: since klauspost decodes on goroutines of its own, a read on
// the goroutine that feeds it stalls its pipeline.)
func (d *direct) Read(b []byte) (int, error) { return d.r.Read(b) }

// directMax bounds one FillAsync read: the decoder gets the bytes of a
// read only when all of it is done.
const directMax = 1 << 20

// FillAsync implements codec.AsyncFiller: a goroutine reads into b (up to
// directMax bytes of it, fewer only at the end of the file).
func (d *direct) FillAsync(b []byte) <-chan codec.FillResult {
	b = b[:min(len(b), directMax)]
	ch := make(chan codec.FillResult, 1)
	d.busy.Add(1)
	go func() {
		defer d.busy.Done()
		n, err := io.ReadFull(d.r, b)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		ch <- codec.FillResult{N: n, Err: err}
	}()
	return ch
}

// Close waits for the reads under way (the file is closed after it).
func (d *direct) Close() error {
	d.busy.Wait()
	return nil
}
