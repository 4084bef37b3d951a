package live

import (
	"testing"

	"github.com/srdgd/srdgd/face"
)

func TestKeyGate(t *testing.T) {
	type step struct {
		unit    string // K key, P predicted, H an H.265 unit
		dropped uint64 // viewer queue drop count seen with the unit
		gap     bool   // camera queue dropped units before it
		want    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"starts at the first key unit", []step{{"P", 0, false, false}, {"P", 0, false, false}, {"K", 0, false, true}, {"P", 0, false, true}}},
		{"viewer queue drop waits for the next key", []step{{"K", 0, false, true}, {"P", 0, false, true}, {"P", 3, false, false}, {"P", 3, false, false}, {"K", 3, false, true}, {"P", 3, false, true}}},
		{"drop landing on a key unit resyncs at once", []step{{"K", 0, false, true}, {"K", 1, false, true}, {"P", 1, false, true}}},
		{"camera gap waits for the next key", []step{{"K", 0, false, true}, {"P", 0, true, false}, {"P", 0, false, false}, {"K", 0, false, true}}},
		{"another codec is never sent and breaks the chain", []step{{"K", 0, false, true}, {"H", 0, false, false}, {"P", 0, false, false}, {"K", 0, false, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var g keyGate
			for i, s := range tc.steps {
				au := &face.AccessUnit{Codec: face.CodecH264, Key: s.unit == "K"}
				if s.unit == "H" {
					au = &face.AccessUnit{Codec: face.CodecH265, Key: true}
				}
				if got := g.admit(au, s.dropped, s.gap); got != s.want {
					t.Fatalf("step %d (%+v): admit %v, want %v", i, s, got, s.want)
				}
			}
		})
	}
}
