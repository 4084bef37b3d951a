package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/match"
)

// TestGallerySREmbedder: match.sr_embedder_model picks what reads SR faces:
// by default faceres when the models folder has it (a pair), face-api
// alone without it (said in the log) or with "same"; a named file that is
// missing is an error naming the key.
func TestGallerySREmbedder(t *testing.T) {
	dist, err := filepath.Abs(filepath.Join("..", "..", "models", "dist"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"face_embedder.onnx", SREmbedderName} {
		if _, err := os.Stat(filepath.Join(dist, f)); err != nil {
			t.Skipf("SKIPPING: %v (make models)", err)
		}
	}
	folder := func(withFaceres bool) string {
		d := t.TempDir()
		files := []string{"blazeface.onnx", "face_embedder.onnx", "face_landmarks68.onnx"}
		if withFaceres {
			files = append(files, SREmbedderName)
		}
		for _, f := range files {
			if err := os.Symlink(filepath.Join(dist, f), filepath.Join(d, f)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	for _, c := range []struct {
		name, value string
		faceres     bool
		want        string // "pair", "single", or an error's text
		log         string
	}{
		{"default, faceres present", "", true, "pair", ""},
		{"default, faceres absent", "", false, "single", "no " + SREmbedderName + " in the models folder"},
		{"same", config.SameEmbedder, true, "single", ""},
		{"the photo embedder's file", filepath.Join(dist, "face_embedder.onnx"), true, "single", ""},
		{"a file", filepath.Join(dist, SREmbedderName), false, "pair", ""},
		{"a missing file", "/nonexistent/embedder.onnx", true, "match.sr_embedder_model", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Storage.ModelsDir, cfg.Storage.StateDir = folder(c.faceres), t.TempDir()
			cfg.Match.Encrypt, cfg.Match.SREmbedderModel = false, c.value
			cfg.SRDG.ORTLibrary = ""
			var logs bytes.Buffer
			g, err := OpenGallery(context.Background(), cfg, true, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if c.want != "pair" && c.want != "single" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					if err == nil {
						g.Close()
					}
					t.Fatalf("err %v, want one naming %s", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			_, pair := g.Embedder.(*match.PairEmbedder)
			if pair != (c.want == "pair") {
				t.Fatalf("embedder %s, want %s", g.Embedder.ModelID(), c.want)
			}
			reader := match.ReaderModel(g.Embedder, 8)
			if wantFaceres := c.want == "pair"; strings.HasPrefix(reader, "human-models faceres@") != wantFaceres {
				t.Errorf("SR faces read by %s", reader)
			}
			if !strings.HasPrefix(match.ReaderModel(g.Embedder, 0), "face-api ") {
				t.Errorf("photos read by %s", match.ReaderModel(g.Embedder, 0))
			}
			if c.log != "" && !strings.Contains(logs.String(), c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, logs.String())
			}
		})
	}
}

// TestMatchThresholdsReader: an unset match.sr.x<scale> is the setting
// measured for the model that reads those faces; a set one wins; a model
// without a measured setting is an error naming the key.
func TestMatchThresholdsReader(t *testing.T) {
	const faceapi, faceres = "face-api face_recognition_model@1a0426853fc3247e+17f82ad1", "human-models faceres@6df2fcc38b0e9ac0+17f82ad1"
	set := config.Default()
	set.Match.SR.X8 = config.SRThreshold{Threshold: 0.5, Margin: 0.01}
	for _, c := range []struct {
		name   string
		cfg    *config.Config
		scale  int
		reader string
		id, mg float64
		err    string
	}{
		{"photos", config.Default(), 0, faceres, 0.9433, 0.02, ""},
		{"x8 face-api", config.Default(), 8, faceapi, 0.94, 0.02, ""},
		{"x16 face-api", config.Default(), 16, faceapi, 0.945, 0.02, ""},
		{"x8 faceres", config.Default(), 8, faceres, 0.664, 0, ""},
		{"x8 set", set, 8, faceres, 0.5, 0.01, ""},
		{"x16 unset beside a set x8", set, 16, faceapi, 0.945, 0.02, ""},
		{"x8 unknown model", config.Default(), 8, "other net@1+2", 0, 0, "match.sr.x8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			th, err := MatchThresholds(c.cfg, c.scale, c.reader)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.reader) {
					t.Fatalf("err %v, want one naming %s and the model", err, c.err)
				}
				return
			}
			if err != nil || th.Identify != c.id || th.Margin != c.mg {
				t.Fatalf("%+v %v, want %v / %v", th, err, c.id, c.mg)
			}
			if (c.scale != 0) != th.Rule.Templates {
				t.Errorf("feedback rule %+v at scale %d", th.Rule, c.scale)
			}
		})
	}
}
