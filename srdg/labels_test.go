package srdg

import (
	"strings"
	"testing"
)

func TestParseAttrs(t *testing.T) {
	names := []string{"male", "glasses", "no_beard"}
	cases := []struct {
		in   string
		want []int
		err  string
	}{
		{"", []int{-1, -1, -1}, ""},
		{"male=1,glasses=0,nobeard=1", []int{1, 0, 1}, ""},
		{"gender=0, no_beard=?", []int{0, -1, -1}, ""},
		{"hat=1", nil, `unknown attribute "hat"`},
		{"male=2", nil, "want 0, 1 or ?"},
		{"male", nil, "want NAME=0|1|?"},
	}
	for _, c := range cases {
		got, err := ParseLabels(c.in, names)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != 3 || got[0] != c.want[0] || got[1] != c.want[1] || got[2] != c.want[2] {
			t.Errorf("%q: got %v %v, want %v", c.in, got, err, c.want)
		}
	}
}
