package ingest

import "time"

// Decoder turns access units of one stream into BGR24 pictures. A Decoder is
// used by one goroutine at a time and must be closed to release its C memory.
type Decoder interface {
	// Decode consumes one access unit: NAL units without start codes, parameter
	// sets included. It returns the pictures that became ready (usually zero or
	// one) and an error when the input was (partly) undecodable; pictures
	// returned together with an error are still usable. Pix of each picture
	// comes from alloc(size) (make when alloc is nil) and is owned by the caller.
	Decode(au [][]byte, pts time.Duration, alloc func(size int) []byte) ([]Picture, error)
	// Close releases the decoder. Decode must not be called afterwards.
	Close() error
}

// Picture is a decoded picture in packed BGR24 (stride 3*Width).
type Picture struct {
	// PTS is the pts passed with the access unit the picture came from.
	PTS           time.Duration
	Width, Height int
	Pix           []byte
}
