package match

import (
	"math"
	"strings"
	"testing"
)

func TestFuse(t *testing.T) {
	tests := []struct {
		name    string
		descs   [][]float32
		weights []float64
		want    []float32
		err     string
	}{
		{"one is itself, normalised", [][]float32{{3, 4}}, nil, []float32{0.6, 0.8}, ""},
		// normalised first: (1,0) and (0,1) weigh the same however long
		{"equal weights", [][]float32{{10, 0}, {0, 0.5}}, nil, []float32{1 / math.Sqrt2, 1 / math.Sqrt2}, ""},
		// 3 (1,0) + 1 (0,1) = (3,1) -> (3,1)/sqrt(10)
		{"quality weights", [][]float32{{1, 0}, {0, 2}}, []float64{3, 1}, []float32{3 / float32(math.Sqrt(10)), 1 / float32(math.Sqrt(10))}, ""},
		{"weight 0 drops a shot", [][]float32{{1, 0}, {0, 1}}, []float64{1, 0}, []float32{1, 0}, ""},
		{"none", nil, nil, nil, "no descriptors"},
		{"weights count", [][]float32{{1, 0}}, []float64{1, 1}, nil, "2 weights for 1"},
		{"dimensions", [][]float32{{1, 0}, {1}}, nil, nil, "descriptor 1 has 1 values"},
		{"negative weight", [][]float32{{1, 0}}, []float64{-1}, nil, "want a finite value >= 0"},
		{"NaN weight", [][]float32{{1, 0}}, []float64{math.NaN()}, nil, "weight 0 is NaN"},
		{"all zero", [][]float32{{1, 0}}, []float64{0}, nil, "every weight is 0"},
		{"zero descriptor", [][]float32{{0, 0}}, nil, nil, "norm 0"},
		{"opposites", [][]float32{{1, 0}, {-1, 0}}, nil, nil, "cancel out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Fuse(tt.descs, tt.weights)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	// the fused descriptor of noisy copies is closer to the clean one than
	// the copies are on average
	clean := []float32{1, 2, 3, 4}
	noisy := [][]float32{{1.5, 2, 3, 4}, {1, 1.5, 3, 4}, {1, 2, 3.5, 4}, {1, 2, 3, 3.5}}
	f, _ := Fuse(noisy, nil)
	var mean float64
	for _, d := range noisy {
		mean += Cosine(d, clean) / float64(len(noisy))
	}
	if c := Cosine(f, clean); c <= mean {
		t.Errorf("fused cosine %v <= mean single cosine %v", c, mean)
	}
}
