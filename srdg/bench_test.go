package srdg

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/srdgd/srdgd/internal/ort"
)

// benchEngine opens the default models (models/dist, or SRDGD_BENCH_SCORE /
// SRDGD_BENCH_GUIDANCE) for the per-face latency benchmarks.
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	score := os.Getenv("SRDGD_BENCH_SCORE")
	if score == "" {
		score = filepath.Join("..", "models", "dist", "score_x8.onnx")
	}
	guid := os.Getenv("SRDGD_BENCH_GUIDANCE")
	if guid == "" {
		guid = filepath.Join("..", "models", "dist", "guidance.onnx")
	}
	if _, err := os.Stat(score); err != nil {
		b.Skipf("no score model at %s (make models): %v", score, err)
	}
	if _, err := os.Stat(guid); err != nil || os.Getenv("SRDGD_BENCH_GUIDANCE") == "none" {
		guid = ""
	}
	rt, err := ort.Open("", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	e, err := Open(ModelOptions{Runtime: rt, ScorePath: score, GuidancePath: guid,
		Session: ort.SessionOptions{Providers: []string{ort.CPU}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// BenchmarkSamplers (SRDGD_BENCH_GUIDANCE=none for unguided) reports per-face latency, evaluations per face and the
// fraction of time spent outside the networks (sampler overhead).
func BenchmarkSamplers(b *testing.B) {
	for _, name := range []string{"fast", "ode"} {
		for _, batch := range []int{1, 8} {
			b.Run(name+"/batch"+itoa(batch), func(b *testing.B) {
				e := benchEngine(b)
				_, lr := e.Sizes()
				faces := make([]Input, batch)
				for i := range faces {
					px := make([]float32, 3*lr*lr)
					for j := range px {
						px[j] = 0.3 + 0.4*float32((j*7+i)%11)/11
					}
					faces[i] = Input{LR: px, Labels: []int{1, 0, 1}}
				}
				var net, total float64
				var evals int
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					res, err := e.SuperResolve(context.Background(), faces, Params{Sampler: name}, NewSeededNoise(uint64(i)))
					if err != nil {
						b.Fatal(err)
					}
					net += res[0].NetTime.Seconds()
					total += res[0].Elapsed.Seconds()
					evals = res[0].ScoreEvals + res[0].GuidanceEvals
				}
				b.ReportMetric(total/float64(b.N)/float64(batch)*1000, "ms/face")
				b.ReportMetric(float64(evals), "evals/face")
				b.ReportMetric(100*(total-net)/total, "%overhead")
			})
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
