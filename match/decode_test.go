package match

import "testing"

// decodeCount asks for memory to be handed back only when no decode is in
// flight and more than bigDecode pixels were decoded since the last time:
// one big photo, or many smaller ones (parallel uploads of 4-megapixel
// photos kept 300 MB of heap when only single big photos counted).
func TestDecodeCount(t *testing.T) {
	const small = 4_000_000 // a 2000x2000 photo
	type step struct {
		start  bool  // start a decode, or end one of pixels
		pixels int64 // pixels of the decode that ends
		free   bool  // done's answer
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one big photo", []step{{start: true}, {pixels: bigDecode + 1, free: true}}},
		{"one photo at the limit", []step{{start: true}, {pixels: bigDecode}}},
		{"small photos one after another", []step{
			{start: true}, {pixels: small},
			{start: true}, {pixels: small},
			{start: true}, {pixels: small, free: true},
			{start: true}, {pixels: small},
		}},
		{"parallel: only when the last ends", []step{
			{start: true}, {start: true}, {start: true},
			{pixels: bigDecode + 1}, {pixels: small},
			{pixels: small, free: true},
		}},
		{"a big one among small ones in flight", []step{
			{start: true}, {start: true},
			{pixels: bigDecode * 5},
			{start: true}, {pixels: small},
			{pixels: small, free: true},
			{start: true}, {pixels: small},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c decodeCount
			for i, s := range tc.steps {
				if s.start {
					c.start()
					continue
				}
				if got := c.done(s.pixels); got != s.free {
					t.Fatalf("step %d: done(%d) = %v, want %v", i, s.pixels, got, s.free)
				}
			}
		})
	}
}
