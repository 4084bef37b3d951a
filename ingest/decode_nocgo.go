//go:build !cgo

package ingest

import "fmt"

// NewAVDecoder needs cgo (libavcodec); this build has none.
func NewAVDecoder(codec string) (Decoder, error) {
	return nil, fmt.Errorf("ingest: decoder for %q: %w", codec, ErrNoDecoder)
}
