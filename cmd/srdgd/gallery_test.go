package main

import (
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
)

// celebaByIdentity returns image paths of the shared CelebA subset grouped by
// identity (research-only data, read in place, never copied into the repo).
func celebaByIdentity(t *testing.T) (dir string, ids []string, byID map[string][]string) {
	t.Helper()
	root, err := celeba.Find()
	if err != nil {
		t.Skipf("SKIPPING: %v", err)
	}
	rows, err := celeba.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	byID = map[string][]string{}
	for _, r := range rows {
		if _, ok := byID[r.Identity]; !ok {
			ids = append(ids, r.Identity)
		}
		byID[r.Identity] = append(byID[r.Identity], celeba.ImagePath(root, r.Image))
	}
	return root, ids, byID
}

// TestGalleryCommands drives `srdgd gallery` end to end with the real models:
// keygen, add (with a rejected non-face), list, search (known and unknown),
// verify, check, remove, and a missing key.
func TestGalleryCommands(t *testing.T) {
	_, ids, byID := celebaByIdentity(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "srdgd.yaml")
	os.WriteFile(cfgPath, []byte("version: 1\nstorage:\n  state_dir: "+filepath.Join(dir, "state")+
		"\nmatch:\n  key_file: "+filepath.Join(dir, "gallery.key")+"\n"), 0o644)
	noface := filepath.Join(dir, "noface.png")
	writeFlatPNG(t, noface)
	ctx := context.Background()
	g := func(args ...string) (int, string, string) {
		return runCLI(t, ctx, append([]string{"gallery", "--config", cfgPath}, args...)...)
	}
	if code, _, errs := g("list"); code != exitFailure || !strings.Contains(errs, "gallery keygen") {
		t.Errorf("list without a key: exit %d, stderr %q (want a hint to run keygen)", code, errs)
	}
	for _, args := range [][]string{{"keygen", "--help"}, {"keygen", "-h"}, {"keygen", "extra"}, {"keygen", "--force"}} {
		code, _, errs := g(args...)
		if _, err := os.Stat(filepath.Join(dir, "gallery.key")); err == nil {
			t.Fatalf("%q wrote a key (exit %d, stderr %q)", args, code, errs)
		}
		if (args[1] == "--help" || args[1] == "-h") != (code == exitOK) || !strings.Contains(errs, "keygen") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	if code, out, errs := g("keygen"); code != exitOK || !strings.Contains(out, "gallery.key") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	if code, _, _ := g("keygen"); code == exitOK {
		t.Error("keygen overwrote an existing key")
	}
	alice, bob := byID[ids[0]], byID[ids[1]]
	// the flag after the photos (one grammar: flags anywhere)
	code, out, errs := g("add", alice[0], alice[1], noface, "--name", "alice")
	if code != exitOK || !strings.Contains(out, "2 of 3 photos enrolled") || !strings.Contains(out, "noface.png: rejected") {
		t.Fatalf("add: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := g("list"); code != exitOK || !strings.Contains(out, "alice") || !strings.Contains(out, "1 people") ||
		!strings.Contains(out, "searchable 2") {
		t.Errorf("list: %d %s", code, out)
	}
	// --json: snake_case, the photos search uses counted, --config after the subcommand
	code, out, errs = runCLI(t, ctx, "gallery", "list", "--json", "--config", cfgPath)
	var people []map[string]any
	if err := json.Unmarshal([]byte(out), &people); code != exitOK || err != nil || len(people) != 1 {
		t.Fatalf("list --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if p := people[0]; p["name"] != "alice" || p["photos"] != 2.0 || p["searchable"] != 2.0 || p["watchlist"] != false {
		t.Errorf("list --json: %v", p)
	}
	checkJSONKeys(t, "list --json", out)
	if code, out, _ := g("search", alice[5]); code != exitOK || !strings.Contains(out, "match: alice") {
		t.Errorf("search for alice's other photo: %d\n%s", code, out)
	}
	// nobody identified: exit 1, with the candidates
	if code, out, _ := g("search", bob[0]); code != exitFailure || !strings.Contains(out, "unknown") || !strings.Contains(out, " 1. alice") {
		t.Errorf("search for a stranger: exit %d (want 1)\n%s", code, out)
	}
	code, out, _ = g("search", "--json", bob[0])
	var sr map[string]any
	if err := json.Unmarshal([]byte(out), &sr); code != exitFailure || err != nil || sr["known"] != false || sr["match"] != nil {
		t.Errorf("search --json for a stranger: exit %d %v\n%s", code, err, out)
	}
	if cands, ok := sr["candidates"].([]any); !ok || len(cands) != 1 || strings.Contains(out, "embedding") {
		t.Errorf("search --json: candidates %v; no descriptor without --embeddings:\n%s", sr["candidates"], out)
	}
	checkJSONKeys(t, "search --json", out)
	if code, out, _ := g("search", alice[5], "--json", "--embeddings"); code != exitOK || !strings.Contains(out, `"embedding": [`) {
		t.Errorf("search --embeddings: exit %d\n%s", code, out)
	}
	if code, out, _ := g("verify", "alice", alice[6], "--json"); code != exitOK || !strings.Contains(out, `"match": true`) {
		t.Errorf("verify: %d\n%s", code, out)
	}
	checkJSONKeys(t, "verify --json", out)
	if code, out, _ := g("verify", "alice", bob[0]); code != exitFailure || !strings.Contains(out, "no match: alice") {
		t.Errorf("verify a stranger: exit %d (want 1)\n%s", code, out)
	}
	if code, out, _ := g("check", "--json"); code != exitOK || !strings.Contains(out, `"problems": []`) || !strings.Contains(out, `"ok": true`) {
		t.Errorf("check: %d %s", code, out)
	}
	if code, _, _ := g("remove", "alice"); code != exitOK {
		t.Error("remove failed")
	}
	if code, _, errs := g("remove", "alice"); code != exitFailure || !strings.Contains(errs, "alice") {
		t.Errorf("second remove: %d %s", code, errs)
	}
	// both changes are in the audit log, chained
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
	if err != nil || len(log) != 2 || log[0].Action != "gallery.add" || log[0].Target != "alice" ||
		log[0].Detail != "2 of 3 photos enrolled" || log[1].Action != "gallery.remove" || !strings.HasPrefix(log[0].Actor, "cli:") {
		t.Errorf("audit log %+v, %v: want gallery.add then gallery.remove of alice", log, err)
	}
	if n, err := hs.VerifyAudit(ctx); n != 2 || err != nil {
		t.Errorf("audit chain: %d %v", n, err)
	}
	if code, _, _ := g("frobnicate"); code != exitUsage {
		t.Error("unknown subcommand not a usage error")
	}
}

// checkJSONKeys fails on keys that are not snake_case (Go field names) and
// on null values (a list must be [], a missing value left out).
func checkJSONKeys(t *testing.T, what, doc string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`"([^"]+)":\s*(null)?`).FindAllStringSubmatch(doc, -1) {
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(m[1]) {
			t.Errorf("%s: key %q is not snake_case", what, m[1])
		}
		if m[2] != "" && m[1] != "match" {
			t.Errorf("%s: %q is null", what, m[1])
		}
	}
}

func writeFlatPNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 160, 200))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
