package srdg

import (
	"reflect"
	"testing"
)

func TestChooseLabels(t *testing.T) {
	cases := []struct {
		probs []float64
		th    float64
		want  []int
	}{
		{[]float64{0.95, 0.05, 0.5}, 0.8, []int{1, 0, -1}},
		{[]float64{0.8, 0.2, 0.79}, 0.8, []int{1, 0, -1}},
		{[]float64{0.99, 0.01}, 1, []int{-1, -1}},
	}
	for _, c := range cases {
		if got := ChooseLabels(c.probs, c.th); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v at %g: got %v want %v", c.probs, c.th, got, c.want)
		}
	}
}

func TestParseAttributes(t *testing.T) {
	for _, in := range []string{`["male","glasses","no_beard"]`, "male,glasses,no_beard", " male, glasses ,no_beard"} {
		if got := ParseAttributes(in); !reflect.DeepEqual(got, []string{"male", "glasses", "no_beard"}) {
			t.Errorf("%q: %v", in, got)
		}
	}
}
