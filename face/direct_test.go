package face

import (
	"math"
	"testing"
)

func TestDirectScale(t *testing.T) {
	for _, c := range []struct {
		side float64
		want int
	}{
		{0, 0}, {-5, 0}, {math.NaN(), 0}, {math.Inf(1), 0},
		{18, 0}, {18.2, 0}, {18.3, 6}, {21.3, 6}, {21.4, 5}, {24, 5}, {25.6, 5}, {26, 4},
		{32, 4}, {33, 3}, {42.7, 2}, {64, 2}, {500, 2},
	} {
		if got := DirectScale(c.side); got != c.want {
			t.Errorf("DirectScale(%v) = %d, want %d", c.side, got, c.want)
		}
		if got := DirectScale(c.side); got != 0 && !IsDirectScale(got) {
			t.Errorf("DirectScale(%v) = %d is not a direct scale", c.side, got)
		}
	}
}
