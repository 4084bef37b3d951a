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
	if code == 0 || !strings.Contains(stderr, `"train" is not allowed`) {
		t.Errorf("--split train: exit %d: %s", code, stderr)
	}
}

// TestEvalCommandShots: --shots adds the single-shot and fused rows (LR
// only, so no SR time), --single=false drops the rows of the probe itself,
// and --calibrate refuses a run without SR rows.
func TestEvalCommandShots(t *testing.T) {
	root, _, _ := celebaByIdentity(t)
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"eval", "--celeba", root, "--split", "val", "--limit", "3", "--sampler", "", "--hr=false",
		"--shots", "2", "--single=false", "--threads", "2", "--out", out}
	code, stdout, stderr := runCLI(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	for _, s := range []string{"| lr-bicubic-shots1 |", "| lr-bicubic-shots2 |", "| lr-bicubic-shots2-score |"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	if strings.Contains(stdout, "| lr-bicubic |") {
		t.Errorf("--single=false printed the single-probe row:\n%s", stdout)
	}
	code, _, stderr = runCLI(t, context.Background(), append(args, "--calibrate", filepath.Join(out, "c.json"))...)
	if code == 0 || !strings.Contains(stderr, "no rows to calibrate") {
		t.Errorf("--calibrate without SR: exit %d: %s", code, stderr)
	}
	for _, bad := range [][]string{{"--shots", "0"}, {"--shot-noise", "1"}, {"--samples", "100"}} {
		code, _, stderr := runCLI(t, context.Background(), append(args, bad...)...)
		if code != exitUsage {
			t.Errorf("%v: exit %d: %s", bad, code, stderr)
		}
	}
}
