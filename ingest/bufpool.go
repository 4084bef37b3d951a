package ingest

// framePoolSize bounds the recycled frame buffers per camera: enough for a
// consumer that holds a few frames, small enough not to pin memory (4 x 6 MB
// at 1080p).
const framePoolSize = 4

// bufPool recycles the pixel buffers of released frames.
type bufPool struct {
	free chan []byte
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
				return b[:size]
			}
			// Left over from another resolution: let it go.
		default:
			return make([]byte, size)
		}
	}
}

// put offers b for reuse; it is dropped when the pool is full.
func (p *bufPool) put(b []byte) {
	if cap(b) == 0 {
		return
	}
	select {
	case p.free <- b:
	default:
	}
}
