package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/config"
)

// TestCLIGrammar: every command takes flags after its arguments, --scale
// means the upscaling factor everywhere (the old --lr flags work and
// warn), and errors name the flag and what is allowed. None of these
// cases needs a model: the command line is checked first.
func TestCLIGrammar(t *testing.T) {
	t.Setenv("SRDGD_CONFIG", "")
	cases := []struct {
		name string
		args []string
		code int
		err  []string
	}{
		{"run takes no argument", []string{"run", "extra"}, exitUsage, []string{`unexpected argument "extra"`}},
		{"demo takes no argument", []string{"demo", "now"}, exitUsage, []string{`unexpected argument "now"`}},
		{"hwtest takes no argument", []string{"hwtest", "x", "--json"}, exitUsage, []string{`unexpected argument "x"`}},
		{"sr scale", []string{"sr", "--in", "x.png", "--scale", "4"}, exitUsage, []string{`"4" is not a scale (allowed: 8 or 16)`}},
		{"sr sampler", []string{"sr", "--in", "x.png", "--sampler", "slow"}, exitUsage, []string{`"slow" is not allowed (allowed: `, "fast", "ode", "reference"}},
		{"sr positional", []string{"sr", "x.png"}, exitUsage, []string{`unexpected argument "x.png"`}},
		{"sr negative steps", []string{"sr", "--in", "x.png", "--steps", "-1"}, exitUsage, []string{"want values >= 0"}},
		{"detect scale", []string{"detect", "--in", "x.png", "--scale", "2"}, exitUsage, []string{"allowed: 8 or 16"}},
		{"detect detector", []string{"detect", "--in", "x.png", "--detector", "yolo"}, exitUsage, []string{"allowed: blazeface, haar"}},
		{"detect old lr", []string{"detect", "--in", "x.png", "--lr", "12"}, exitUsage, []string{"--lr is deprecated, use --scale", "allowed: 16 or 8"}},
		{"detect positional", []string{"detect", "x.png"}, exitUsage, []string{`unexpected argument "x.png" (give the image with --in)`}},
		{"detect flag after", []string{"detect", "--in", "missing.png", "--json"}, exitFailure, []string{"missing.png"}},
		{"gallery unknown", []string{"gallery", "frobnicate"}, exitUsage, []string{`unknown command "frobnicate" (allowed: add, check,`}},
		{"gallery add needs a name", []string{"gallery", "add", "a.jpg"}, exitUsage, []string{"--name is required"}},
		{"gallery add needs photos", []string{"gallery", "add", "--name", "bob"}, exitUsage, []string{"missing argument", "gallery add PHOTO|DIR... --name NAME"}},
		{"gallery verify arguments", []string{"gallery", "verify", "bob"}, exitUsage, []string{"missing argument"}},
		{"gallery remove arguments", []string{"gallery", "remove", "a", "b"}, exitUsage, []string{`unexpected argument "b"`}},
		{"gallery search scale", []string{"gallery", "search", "a.jpg", "--scale", "32"}, exitUsage, []string{`"32" is not a scale (allowed: 8 or 16)`}},
		{"gallery search old lr", []string{"gallery", "search", "a.jpg", "--lr", "12"}, exitUsage, []string{"--lr is deprecated, use --scale", "allowed: 8 or 16"}},
		{"gallery search k", []string{"gallery", "search", "a.jpg", "-k", "0"}, exitUsage, []string{"-k 0 is out of range (allowed: 1 to 100)"}},
		{"gallery search sampler", []string{"gallery", "search", "a.jpg", "--sampler", "x"}, exitUsage, []string{"allowed: "}},
		{"gallery config without value", []string{"gallery", "list", "--config"}, exitUsage, []string{"flag needs an argument: --config"}},
		{"gallery list bad flag", []string{"gallery", "list", "--jsn"}, exitUsage, []string{"flag provided but not defined: -jsn"}},
		{"eval split", []string{"eval", "--celeba", "x", "--split", "train"}, exitUsage, []string{`"train" is not allowed (allowed: test, val)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, context.Background(), c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
			for _, w := range c.err {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

// The parsed values: --scale and its old spellings mean the same thing.
func TestScaleFlags(t *testing.T) {
	cfg := config.Default()
	for _, c := range []struct {
		args  []string
		scale int
		warn  bool
	}{
		{[]string{"a.jpg"}, 0, false},
		{[]string{"a.jpg", "--scale", "16"}, 16, false},
		{[]string{"--scale=8", "a.jpg"}, 8, false},
		{[]string{"a.jpg", "--lr", "16"}, 16, true}, // gallery search's --lr was the factor
	} {
		var errb bytes.Buffer
		g, code := parseGalleryArgs("search", c.args, cfg, &errb)
		if g == nil || g.scale != c.scale || g.pos[0] != "a.jpg" || strings.Contains(errb.String(), "deprecated") != c.warn {
			t.Errorf("gallery search %q: %+v exit %d, stderr %q; want scale %d", c.args, g, code, errb.String(), c.scale)
		}
	}
	for _, c := range []struct {
		args []string
		lr   int
		warn bool
	}{
		{[]string{"--in", "a.png"}, 16, false},
		{[]string{"--in", "a.png", "--scale", "16"}, 8, false},
		{[]string{"--in", "a.png", "--lr", "16"}, 16, true}, // detect's --lr was the probe size
		{[]string{"--in", "a.png", "--lr", "8"}, 8, true},
		{[]string{"--in", "a.png", "--ort", "/x/lib.so"}, 16, true},
	} {
		var errb bytes.Buffer
		a, code := parseDetectArgs(c.args, &errb)
		if a == nil || a.lr != c.lr || strings.Contains(errb.String(), "deprecated") != c.warn {
			t.Errorf("detect %q: %+v exit %d, stderr %q; want probe %d", c.args, a, code, errb.String(), c.lr)
		}
	}
}
