package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteOutputs writes results.json, results.md, roc.png and cmc.png into
// dir.
func WriteOutputs(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval outputs: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("eval outputs: results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("eval outputs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(Markdown(rep)), 0o644); err != nil {
		return fmt.Errorf("eval outputs: %w", err)
	}
	roc := Plot{Title: "ROC (1:1 verification)", XLabel: "false match rate", YLabel: "true match rate",
		XLog: true, XMin: 1e-3, XMax: 1, YMin: 0, YMax: 1}
	cmc := Plot{Title: "CMC (1:N identification)", XLabel: "rank", YLabel: "identification rate",
		XMin: 1, XMax: 10, YMin: 0, YMax: 1}
	for _, r := range rep.Results {
		name := fmt.Sprintf("x%d %s", r.Scale, r.Method)
		if len(r.ROC) > 0 {
			roc.Series = append(roc.Series, ROCSeries(name, r.ROC))
		}
		cmc.Series = append(cmc.Series, CMCSeries(name, r.Rank))
	}
	for name, p := range map[string]Plot{"roc.png": roc, "cmc.png": cmc} {
		if len(p.Series) == 0 {
			continue
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("eval outputs: %w", err)
		}
		err = p.WritePNG(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("eval outputs: %s: %w", name, err)
		}
	}
	return nil
}

// Markdown renders the report as one table per scale (Rank-k in percent).
func Markdown(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation\n\nGallery: %d images of %d identities. Probes: %d. Embedder: %s.\n",
		rep.Gallery, rep.Identities, rep.Probes, rep.Model)
	scale := 0
	for _, r := range rep.Results {
		if r.Scale != scale {
			scale = r.Scale
			fmt.Fprintf(&b, "\n## %dx (%dx%d -> %dx%d)\n\n", scale, HR/scale, HR/scale, HR, HR)
			b.WriteString("| method | PSNR | SSIM | AUC | R1 | R5 | R10 |\n|---|---|---|---|---|---|---|\n")
		}
		psnr := fmt.Sprintf("%.2f", r.PSNR)
		if r.PSNR >= psnrCap-1e-6 {
			psnr = "inf"
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %.2f | %.2f | %.2f |\n", r.Method, psnr, r.SSIM,
			r.AUC, 100*r.R1, 100*r.R5, 100*r.R10)
	}
	b.WriteString("\n## Operating points\n\n" +
		"Verification: the threshold at a pair false match rate of 1e-3 and the true match rate there. " +
		"Open set (a match needs the threshold and the margin over the runner-up; every probe is also " +
		"searched with its own identity removed, as an unknown person): the threshold and margin with " +
		"the highest DIR (identified and accepted) at FPIR (unknown accepted) <= 1 %, and the rates at " +
		"the configured thresholds. Rates in percent.\n\n" +
		"| scale | method | verify thr @FMR 1e-3 | TMR | open-set thr / margin | DIR | wrong | FPIR | configured thr / margin | DIR | wrong | FPIR |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		if r.Verify != nil {
			fmt.Fprintf(&b, "| %dx | %s | %.4f | %.1f | ", r.Scale, r.Method, r.Verify.Threshold, 100*r.Verify.TMR)
		} else {
			fmt.Fprintf(&b, "| %dx | %s | - | - | ", r.Scale, r.Method)
		}
		writePoints(&b, r.OpenSetBest, r.Configured)
	}
	sizes := false
	for _, r := range rep.Results {
		for _, sp := range r.BySize {
			if !sizes {
				sizes = true
				b.WriteString("\n## Open set by gallery size\n\n" +
					"Multi-shot rows searched against random galleries of N identities (each probe " +
					"20 times as a known person among its identity and N-1 others, and as an unknown " +
					"one among N others; the last row of a method is the full gallery): the best " +
					"threshold and margin at FPIR <= 1 % on this split, and the rates at the shipped " +
					"visit calibration's setting for N (what the daemon decides with; measured on " +
					"CelebA val). Rates in percent.\n\n" +
					"| scale | method | N | best thr / margin | DIR | wrong | FPIR | calibrated thr / margin | DIR | wrong | FPIR |\n" +
					"|---|---|---|---|---|---|---|---|---|---|---|\n")
			}
			fmt.Fprintf(&b, "| %dx | %s | %d | ", r.Scale, r.Method, sp.Gallery)
			writePoints(&b, sp.Best, sp.Calibrated)
		}
	}
	return b.String()
}

// writePoints ends a table row with each open-set point's setting and
// rates in percent ("-" for a missing one).
func writePoints(b *strings.Builder, pts ...*OpenSetPoint) {
	for _, p := range pts {
		if p == nil {
			b.WriteString("- | - | - | - | ")
			continue
		}
		fmt.Fprintf(b, "%.4f / %.3f | %.1f | %.1f | %.1f | ", p.Threshold, p.Margin, 100*p.DIR, 100*p.Wrong, 100*p.FPIR)
	}
	b.WriteString("\n")
}
