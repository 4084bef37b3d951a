package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/internal/app"

	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
)

// withMetadata copies the ONNX model src to dst with one more metadata entry
// (ModelProto field 14, metadata_props, appended: protobuf merges repeated
// fields written later), which changes the file's hash and so the
// embedder's model id while the network stays the same.
func withMetadata(t *testing.T, src, dst, key, value string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("SKIPPING %s: no shipped embedder: %v", t.Name(), err)
	}
	field := func(tag byte, s string) []byte { return append([]byte{tag, byte(len(s))}, s...) }
	entry := append(field(0x0a, key), field(0x12, value)...) // key = 1, value = 2
	b = append(b, append([]byte{14<<3 | 2, byte(len(entry))}, entry...)...)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("SKIPPING %s: no shipped model: %v", t.Name(), err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGalleryReembed changes the configured embedder under an enrolled
// gallery and runs `srdgd gallery reembed`. The repository ships one face
// embedder, so the second one is the same network with one more metadata
// entry: another file hash, hence another model id, as after a real
// embedder upgrade (the descriptors' values are the same here, which the
// test does not rely on).
func TestGalleryReembed(t *testing.T) {
	_, ids, byID := celebaByIdentity(t)
	dir := t.TempDir()
	dist := repoModels
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	for _, d := range []string{v1, v2} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(dist, "face_landmarks68.onnx"), filepath.Join(d, "face_landmarks68.onnx"))
	}
	copyFile(t, filepath.Join(dist, "face_embedder.onnx"), filepath.Join(v1, "face_embedder.onnx"))
	withMetadata(t, filepath.Join(dist, "face_embedder.onnx"), filepath.Join(v2, "face_embedder.onnx"), "srdgd.revision", "reembed-test")
	writeConfig := func(name, models string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("version: 1\nstorage:\n  state_dir: "+filepath.Join(dir, "state")+
			"\nmatch:\n  key_file: "+filepath.Join(dir, "gallery.key")+
			"\n  embedder_model: "+filepath.Join(models, "face_embedder.onnx")+"\n"), 0o644)
		return p
	}
	cfg1, cfg2 := writeConfig("v1.yaml", v1), writeConfig("v2.yaml", v2)
	ctx := context.Background()
	g := func(cfg string, args ...string) (int, string, string) {
		return runCLI(t, ctx, append([]string{"gallery", "--config", cfg}, args...)...)
	}
	if code, out, errs := g(cfg1, "keygen"); code != exitOK {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	alice, bob := byID[ids[0]], byID[ids[1]]
	if code, out, errs := g(cfg1, "add", "--name", "alice", alice[0], alice[1]); code != exitOK || !strings.Contains(out, "2 of 2 photos enrolled") {
		t.Fatalf("add alice: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := g(cfg1, "add", "--name", "bob", bob[0]); code != exitOK {
		t.Fatalf("add bob: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := g(cfg1, "search", alice[5]); code != exitOK || !strings.Contains(out, "match: alice") {
		t.Fatalf("search with the enrolling embedder: %d\n%s", code, out)
	}

	// The embedder changed: nobody is searchable, and opening the gallery
	// the way the daemon does (openServices) says what to run.
	if code, out, _ := g(cfg2, "search", alice[5]); code != exitFailure || strings.Contains(out, "match: alice") || !strings.Contains(out, "unknown") {
		t.Fatalf("search with the new embedder before reembed: exit %d (want 1: nobody identified)\n%s", code, out)
	}
	// list counts what search can use: nothing yet
	if code, out, _ := g(cfg2, "list"); code != exitOK || !strings.Contains(out, "photos 2  searchable 0") {
		t.Fatalf("list with the new embedder before reembed: %d\n%s", code, out)
	}
	c2, err := config.LoadOrDefault(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	env, err := app.OpenGallery(ctx, c2, true, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	newModel := env.Embedder.ModelID()
	env.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "srdgd gallery reembed") ||
		!strings.Contains(logs.String(), "photos=3") {
		t.Fatalf("opening with another embedder logged:\n%s\nwant a warning naming the 3 photos and srdgd gallery reembed", logs.String())
	}

	code, out, errs := g(cfg2, "reembed")
	if code != exitOK || !strings.Contains(out, "model "+newModel+": 3 photos needed a descriptor, 3 re-embedded, 0 failed") ||
		!strings.Contains(out, "2 people, 3 of 3 photos searchable") {
		t.Fatalf("reembed: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := g(cfg2, "search", alice[5]); code != exitOK || !strings.Contains(out, "match: alice") {
		t.Fatalf("search with the new embedder after reembed: %d\n%s", code, out)
	}
	if code, out, _ := g(cfg2, "reembed"); code != exitOK || !strings.Contains(out, "0 photos needed a descriptor") {
		t.Fatalf("second reembed: %d\n%s", code, out)
	}
	if code, out, _ := g(cfg2, "check"); code != exitOK {
		t.Fatalf("check after reembed: %d %s", code, out)
	}
	// the old embedder's descriptors were replaced: now it is the one with
	// nothing to search
	if code, out, _ := g(cfg2, "list"); code != exitOK || !strings.Contains(out, "photos 2  searchable 2") {
		t.Fatalf("list after reembed: %d\n%s", code, out)
	}
	if code, out, _ := g(cfg1, "search", alice[5]); code != exitFailure || strings.Contains(out, "match: alice") {
		t.Fatalf("search with the old embedder after reembed: %d\n%s", code, out)
	}
	// the change is in the audit log (once: the second run changed nothing)
	key, err := match.LoadKey(filepath.Join(dir, "gallery.key"))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := history.Open(ctx, history.Options{Path: filepath.Join(dir, "state", "history.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	log, err := hs.AuditLog(ctx, 0, 10)
	if err != nil || len(log) != 3 || log[2].Action != "gallery.reembed" || log[2].Target != newModel {
		t.Fatalf("audit log %+v, %v: want the two adds and one gallery.reembed of %s", log, err, newModel)
	}
	if code, _, errs := g(cfg2, "reembed", "extra"); code != exitUsage || !strings.Contains(errs, "usage: srdgd gallery reembed") {
		t.Fatalf("reembed with an argument: %d %s", code, errs)
	}
}
