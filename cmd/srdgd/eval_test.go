package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/eval"
)

// TestEvalCommand runs `srdgd eval` on real CelebA faces (LR rows only, so it
// needs no SR time): validation probes, the operating-point table, and the
// configured thresholds taken from --config (photo setting for the HR row,
// the SR setting of the scale for restored probes).
func TestEvalCommand(t *testing.T) {
	root, _, _ := celebaByIdentity(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "srdgd.yaml")
	if err := os.WriteFile(cfgPath, []byte("version: 1\nmatch:\n  sr:\n    x8:\n      threshold: 0.5\n      margin: 0.001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, context.Background(), "eval", "--celeba", root, "--split", "val", "--limit", "3",
		"--sampler", "", "--threads", "2", "--config", cfgPath, "--out", out)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var rep eval.Report
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Probes != 3 || rep.Identities != 200 || len(rep.Results) != 2 {
		t.Fatalf("report: %d probes, %d identities, %d results", rep.Probes, rep.Identities, len(rep.Results))
	}
	want := map[string][2]float64{"hr": {0.9433, 0.02}, "lr-bicubic": {0.5, 0.001}}
	for _, r := range rep.Results {
		w, ok := want[r.Method]
		if !ok || r.Configured == nil || r.Configured.Threshold != w[0] || r.Configured.Margin != w[1] {
			t.Errorf("%s: configured %+v, want threshold/margin %v", r.Method, r.Configured, w)
		}
		if len(r.OpenSet) == 0 {
			t.Errorf("%s: no open-set grid", r.Method)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	for _, s := range []string{"## Operating points", "| 8x | lr-bicubic |", "0.5000 / 0.001"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q:\n%s", s, md)
		}
	}
	// the validation probes are not the test ones
	code, _, stderr = runCLI(t, context.Background(), "eval", "--celeba", root, "--split", "train", "--out", out)
	if code == 0 || !strings.Contains(stderr, `split "train"`) {
		t.Errorf("--split train: exit %d: %s", code, stderr)
	}
}
