package main

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
)

// TestGalleryFeedbackCommands gives verdicts on a hit in the history from
// the command line (real models, real history): the templates land on the
// right people, audited; bad verdicts are usage errors; the watchlist is
// set and cleared.
func TestGalleryFeedbackCommands(t *testing.T) {
	_, ids, byID := celebaByIdentity(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "srdgd.yaml")
	os.WriteFile(cfgPath, []byte("version: 1\nstorage:\n  state_dir: "+filepath.Join(dir, "state")+
		"\nmatch:\n  key_file: "+filepath.Join(dir, "gallery.key")+"\n"), 0o644)
	ctx := context.Background()
	g := func(args ...string) (int, string, string) {
		return runCLI(t, ctx, append([]string{"gallery", "--config", cfgPath}, args...)...)
	}
	if code, _, errs := g("keygen"); code != exitOK {
		t.Fatal(errs)
	}
	alice, bob := byID[ids[0]], byID[ids[1]]
	for _, p := range []struct{ name, photo string }{{"alice", alice[0]}, {"bob", bob[0]}} {
		if code, _, errs := g("add", "--name", p.name, p.photo); code != exitOK {
			t.Fatalf("add %s: %s", p.name, errs)
		}
	}
	// a hit of bob's face that named alice, in the history
	img, err := faceimg.Load(bob[1])
	if err != nil {
		t.Fatal(err)
	}
	var sr bytes.Buffer
	if err := jpeg.Encode(&sr, img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(celeba.Box), nil); err != nil {
		t.Fatal(err)
	}
	key, err := match.LoadKey(filepath.Join(dir, "gallery.key"))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := history.Open(ctx, history.Options{Path: filepath.Join(dir, "state", "history.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	hit := &face.Hit{ID: face.NewID(now), Camera: "door", FrameTime: now, Time: now, SR: face.SR{Scale: 8, LRSize: 16},
		Match:  face.Match{Known: true, Name: "alice", PersonID: 1, Similarity: 0.95, TopK: []face.Candidate{{PersonID: 1, Name: "alice", Similarity: 0.95}}},
		SRJPEG: sr.Bytes()}
	if err := hs.Publish(ctx, hit); err != nil {
		t.Fatal(err)
	}
	hs.Close()

	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"feedback", hit.ID, "reject"}, exitOK, "reject alice: template"},
		{[]string{"feedback", hit.ID, "confirm", "bob"}, exitOK, "confirm bob: template"},
		{[]string{"feedback", hit.ID, "confirm"}, exitUsage, "confirm needs the person"},
		{[]string{"feedback", hit.ID, "maybe"}, exitUsage, `verdict "maybe"`},
		{[]string{"feedback", hit.ID, "confirm", "nobody"}, exitFailure, "nobody"},
		{[]string{"feedback", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "reject"}, exitFailure, "no hit"},
		{[]string{"feedback", hit.ID}, exitUsage, "usage"},
		{[]string{"watchlist", "bob", "on"}, exitOK, "watchlist on: bob"},
		{[]string{"watchlist", "bob", "maybe"}, exitUsage, "usage"},
		{[]string{"watchlist", "nobody", "on"}, exitFailure, "nobody"},
		{[]string{"threshold", "alice", "--offset", "0.05"}, exitOK, "threshold override of alice: threshold_offset +0.050 margin_offset +0.000"},
		{[]string{"threshold", "--offset", "-0.02", "bob", "--margin-offset", "0.01"}, exitOK, "threshold override of bob: threshold_offset -0.020 margin_offset +0.010"},
		{[]string{"threshold", "alice", "--offset", "-0.5"}, exitUsage, "threshold_offset -0.5"},
		{[]string{"threshold", "alice"}, exitUsage, "give --offset"},
		{[]string{"threshold", "alice", "off", "--offset", "0.1"}, exitUsage, "give --offset"},
		{[]string{"threshold", "nobody", "--offset", "0.01"}, exitFailure, "nobody"},
		// a given offset is an override even when it is NaN (refused) or zero
		{[]string{"threshold", "alice", "--offset", "NaN"}, exitUsage, "threshold_offset"},
		{[]string{"threshold", "bob", "--margin-offset", "0"}, exitOK, "threshold override of bob: threshold_offset +0.000 margin_offset +0.000"},
		{[]string{"threshold", "bob", "off"}, exitOK, "threshold override of bob: off"},
	} {
		code, out, errs := g(c.args...)
		if code != c.code || !strings.Contains(out+errs, c.out) {
			t.Errorf("%q: exit %d\n%s%s\nwant exit %d and %q", c.args, code, out, errs, c.code, c.out)
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	env, err := app.OpenGallery(ctx, cfg, false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for who, want := range map[string][]string{"alice": {"rejected"}, "bob": {"confirmed"}} {
		tl, err := env.Gallery.Templates(ctx, who)
		var kinds []string
		for _, x := range tl {
			kinds = append(kinds, x.Kind)
			if x.Source != hit.ID || x.Scale != 8 {
				t.Errorf("%s's template %+v: want source %s, scale 8", who, x, hit.ID)
			}
		}
		if err != nil || !slices.Equal(kinds, want) {
			t.Errorf("%s's templates %v (%v), want %v", who, kinds, err, want)
		}
	}
	people, _ := env.Gallery.List(ctx)
	for _, p := range people {
		if p.Watchlist != (p.Name == "bob") {
			t.Errorf("%s watchlist %v", p.Name, p.Watchlist)
		}
		if want := map[string]match.Offset{"alice": {Threshold: 0.05}}[p.Name]; p.Offset != want {
			t.Errorf("%s threshold override %+v, want %+v", p.Name, p.Offset, want)
		}
	}
	if code, out, _ := g("list"); code != exitOK || !strings.Contains(out, "threshold +0.050 margin +0.000") {
		t.Errorf("list does not show alice's override: %s", out)
	}
	if code, _, _ := g("watchlist", "bob", "off"); code != exitOK {
		t.Error("watchlist off failed")
	}
	// the changes are audited with the API's action names
	hs, err = history.Open(ctx, history.Options{Path: filepath.Join(dir, "state", "history.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	log, _ := hs.AuditLog(ctx, 0, 100)
	var acts []string
	for _, e := range log {
		acts = append(acts, e.Action)
	}
	for _, want := range []string{"hit.feedback", "hit.feedback.failed", "gallery.watchlist", "gallery.override"} {
		if !slices.Contains(acts, want) {
			t.Errorf("audit actions %v: no %s", acts, want)
		}
	}
}
