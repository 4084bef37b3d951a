package ingest

import "sync/atomic"

// framePoolSize bounds the recycled frame buffers per camera: enough for a
// consumer that holds a few frames, small enough not to pin memory (4 x 6 MB
// at 1080p).
const framePoolSize = 4

// bufPool recycles the pixel buffers of released frames and counts what it
// hands out, so that a consumer that forgets Frame.Release shows up in
// Status (BuffersAllocated grows with every frame).
type bufPool struct {
	free chan []byte
	// allocated: fresh buffers made; reused: buffers taken from free;
	// returned: buffers given back by put (kept or not).
	allocated, reused, returned atomic.Uint64
}

func newBufPool(n int) *bufPool {
	return &bufPool{free: make(chan []byte, n)}
}

// get returns a buffer of size bytes, recycled when one of the right size is
// free. Its content is undefined; the decoder overwrites all of it.
func (p *bufPool) get(size int) []byte {
	for {
		select {
		case b := <-p.free:
			if cap(b) >= size && cap(b) <= 2*size {
				p.reused.Add(1)
				return b[:size]
			}
			// Left over from another resolution: let it go.
		default:
			p.allocated.Add(1)
			return make([]byte, size)
		}
	}
}

// put offers b for reuse; it is dropped when the pool is full.
func (p *bufPool) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.returned.Add(1)
	select {
	case p.free <- b:
	default:
	}
}

// outstanding is the number of buffers handed out and not yet returned: the
// frames some subscriber (or a queue) still holds.
func (p *bufPool) outstanding() int64 {
	// returned first: a put racing with this read can only make the result
	// larger than the truth, never negative
	r := p.returned.Load()
	return int64(p.allocated.Load()+p.reused.Load()) - int64(r)
}
