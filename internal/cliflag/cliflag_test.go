package cliflag

import (
	"bytes"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseArgsInterspersed(t *testing.T) {
	cases := []struct {
		args    []string
		pos     []string
		x       string
		b       bool
		wantErr string
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, "", false, ""},
		{[]string{"a", "--x", "1", "b"}, []string{"a", "b"}, "1", false, ""},
		{[]string{"a", "b", "--x=2", "--b"}, []string{"a", "b"}, "2", true, ""},
		{[]string{"--b", "a"}, []string{"a"}, "", true, ""},
		{[]string{"a", "--", "--x", "b"}, []string{"a", "--x", "b"}, "", false, ""},
		{[]string{"-", "a"}, []string{"-", "a"}, "", false, ""},
		{[]string{"a", "--bogus"}, nil, "", false, "flag provided but not defined: -bogus"},
		{[]string{"a", "--x"}, nil, "", false, "flag needs an argument: -x"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			x := fs.String("x", "", "")
			b := fs.Bool("b", false, "")
			pos, err := Parse(fs, c.args)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(pos, c.pos) || *x != c.x || *b != c.b {
				t.Errorf("pos %q x %q b %v err %v; want %q %q %v", pos, *x, *b, err, c.pos, c.x, c.b)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, "sr", 5*time.Second)
	now := p.t0
	p.now = func() time.Time { return now }
	for done := 1; done <= 30; done++ {
		now = now.Add(time.Second)
		p.Update(done, 30)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || lines[0] != "sr: 5/30 evaluations (16%), 5s, about 25s left" || lines[5] != "sr: 30/30 evaluations (100%), 30s" {
		t.Errorf("progress lines:\n%s", out.String())
	}
	// a run shorter than one interval says nothing
	out.Reset()
	q := NewProgress(&out, "sr", 5*time.Second)
	q.Update(1, 2)
	q.Update(2, 2)
	if out.Len() != 0 {
		t.Errorf("short run printed %q", out.String())
	}
}

func TestLists(t *testing.T) {
	cases := []struct {
		scale, sampler string
		scales         []int
		samplers       []string
		wantErr        string
	}{
		{"8", "fast", []int{8}, []string{"fast"}, ""},
		{"8,16", "fast, ode", []int{8, 16}, []string{"fast", "ode"}, ""},
		{" 16 ", "", []int{16}, nil, ""},
		{"8,12", "fast", nil, nil, `"12" is not a scale (allowed: 8 or 16)`},
		{"8,", "fast", nil, nil, `"" is not a scale`},
		{"8", "fast,slow", nil, nil, `"slow" is not allowed (allowed: fast, ode)`},
	}
	for _, c := range cases {
		t.Run(c.scale+"/"+c.sampler, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			sc := &Scales{V: []int{8}, Allowed: []int{8, 16}}
			fs.Var(sc, "scale", "")
			sa := NewEnumList(fs, "sampler", []string{"fast"}, "", "fast", "ode")
			_, err := Parse(fs, []string{"--scale", c.scale, "--sampler", c.sampler})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(sc.V, c.scales) || !slices.Equal(sa.V, c.samplers) {
				t.Errorf("got %v %v, %v; want %v %v", sc.V, sa.V, err, c.scales, c.samplers)
			}
			if got := sc.String(); got != strings.Trim(strings.Join(strings.Fields(strings.ReplaceAll(c.scale, ",", " ")), ","), " ") {
				t.Errorf("String %q", got)
			}
		})
	}
}
