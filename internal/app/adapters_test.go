package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/testutil"
)

// TestGalleryLoadsSRAdapters: with match.sr_adapters on, OpenGallery gives
// the embedder the adapters found in the models folder (and refuses one
// made for another embedder); off, or without a file, none.
func TestGalleryLoadsSRAdapters(t *testing.T) {
	dist, err := filepath.Abs(filepath.Join("..", "..", "models", "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dist, "face_embedder.onnx")); err != nil {
		t.Skipf("SKIPPING: %v (make models)", err)
	}
	models := t.TempDir()
	for _, f := range []string{"blazeface.onnx", "face_embedder.onnx", "face_landmarks68.onnx"} {
		if err := os.Symlink(filepath.Join(dist, f), filepath.Join(models, f)); err != nil {
			t.Fatal(err)
		}
	}
	fixture, err := os.ReadFile(filepath.Join("..", "..", "match", "testdata", "sr_adapter_x8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(on bool) (*Gallery, error) {
		cfg := config.Default()
		cfg.Storage.ModelsDir, cfg.Storage.StateDir = models, t.TempDir()
		cfg.Match.Encrypt, cfg.Match.SRAdapters = false, on
		// the fixture adapter is for face-api's 128-d descriptors
		cfg.Match.SREmbedderModel = config.SameEmbedder
		cfg.SRDG.ORTLibrary = ""
		return OpenGallery(context.Background(), cfg, true, nil, nil)
	}
	g, err := open(true)
	if err != nil {
		t.Fatal(err)
	}
	model := g.Embedder.ModelID()
	if id := g.Embedder.AdapterID(8); id != "" {
		t.Errorf("no adapter file, yet adapter %q", id)
	}
	g.Close()
	adapter := filepath.Join(models, "sr_adapter_x8.onnx")
	for _, c := range []struct {
		name, embedder string
		on             bool
		want           string // "" = no adapter, "adapter" = one loaded, else an error naming it
	}{
		{"on, made for this embedder", model, true, "adapter"},
		{"off", model, false, ""},
		{"on, made for another embedder", "another-embedder@1", true, "match.sr_adapters"},
	} {
		if err := os.WriteFile(adapter, testutil.AppendONNXMetadata(fixture, "srdgd.embedder_model", c.embedder), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := open(c.on)
		switch {
		case c.want == "adapter" || c.want == "":
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if got := g.Embedder.AdapterID(8); (got != "") != (c.want == "adapter") || g.Embedder.AdapterID(16) != "" {
				t.Errorf("%s: adapter x8 %q x16 %q", c.name, got, g.Embedder.AdapterID(16))
			}
			g.Close()
		default:
			if err == nil {
				g.Close()
				t.Errorf("%s: opened", c.name)
			} else if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "another-embedder@1") {
				t.Errorf("%s: %v, want it to name %s and the adapter's embedder", c.name, err, c.want)
			}
		}
	}
}
