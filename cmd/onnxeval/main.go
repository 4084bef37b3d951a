// Command onnxeval runs one ONNX model through ONNX Runtime on .npy inputs and
// writes its outputs as .npy: the bridge the Python model toolchain uses to
// check its exports against the runtime the daemon uses (there is no Python
// onnxruntime on Debian).
//
//	go run ./cmd/onnxeval --model m.onnx --in x_t=x.npy --in sigma=s.npy --out score=out.npy [--time N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/srdgd/srdgd/internal/npy"
	"github.com/srdgd/srdgd/internal/ort"
)

type pairs []string

func (p *pairs) String() string     { return strings.Join(*p, ",") }
func (p *pairs) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "onnxeval:", err)
		os.Exit(1)
	}
}

func run() error {
	var ins, outs pairs
	model := flag.String("model", "", "ONNX file")
	lib := flag.String("ort", "", "libonnxruntime path (default: search)")
	threads := flag.Int("threads", 0, "intra-op threads (0 = ORT default)")
	repeat := flag.Int("time", 0, "if > 0, run this many extra times and print the median latency")
	meta := flag.Bool("meta", false, "print the model's metadata and exit")
	flag.Var(&ins, "in", "NAME=FILE.npy input (repeat)")
	flag.Var(&outs, "out", "NAME=FILE.npy output (repeat)")
	flag.Parse()
	if *model == "" {
		return fmt.Errorf("--model is required")
	}
	rt, err := ort.Open(*lib, nil)
	if err != nil {
		return err
	}
	defer rt.Close()
	if *meta {
		return printMeta(rt, *model)
	}
	slot := ort.Slot{Name: "model"}
	inVals, err := loadInputs(&slot, ins)
	defer destroy(inVals)
	if err != nil {
		return err
	}
	var files []string
	for _, p := range outs {
		name, file, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("--out %q: want NAME=FILE", p)
		}
		slot.Outputs = append(slot.Outputs, name)
		files = append(files, file)
	}
	s, err := rt.NewSession(*model, slot, ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: *threads})
	if err != nil {
		return err
	}
	defer s.Close()
	outVals := make([]ort.Value, len(files)) // nil: ORT allocates
	err = s.Run(context.Background(), inVals, outVals)
	defer destroy(outVals)
	if err != nil {
		return err
	}
	if err := writeOutputs(slot.Outputs, files, outVals); err != nil {
		return err
	}
	if *repeat > 0 {
		return timeRuns(s, inVals, len(files), *repeat)
	}
	return nil
}

// printMeta prints the model's inputs, outputs and metadata.
func printMeta(rt *ort.Runtime, model string) error {
	inInfo, outInfo, md, err := rt.ReadInfo(model)
	if err != nil {
		return err
	}
	for _, i := range inInfo {
		fmt.Println("input ", i.String())
	}
	for _, o := range outInfo {
		fmt.Println("output", o.String())
	}
	for k, v := range md {
		fmt.Printf("%s = %s\n", k, v)
	}
	return nil
}

// loadInputs reads each NAME=FILE.npy into a tensor and names it in slot;
// the tensors made so far are returned with an error too (to destroy).
func loadInputs(slot *ort.Slot, ins []string) ([]ort.Value, error) {
	var vals []ort.Value
	for _, p := range ins {
		name, file, ok := strings.Cut(p, "=")
		if !ok {
			return vals, fmt.Errorf("--in %q: want NAME=FILE", p)
		}
		a, err := npy.ReadFile(file)
		if err != nil {
			return vals, err
		}
		shape := make([]int64, len(a.Shape))
		for i, d := range a.Shape {
			shape[i] = int64(d)
		}
		t, err := ort.NewTensor(a.Float32(), shape...)
		if err != nil {
			return vals, fmt.Errorf("input %s: %w", name, err)
		}
		slot.Inputs = append(slot.Inputs, name)
		vals = append(vals, t)
	}
	return vals, nil
}

// writeOutputs writes each float32 output to its .npy file.
func writeOutputs(names, files []string, vals []ort.Value) error {
	for i, v := range vals {
		t, ok := v.(interface{ GetData() []float32 })
		if !ok {
			return fmt.Errorf("output %s is not a float32 tensor", names[i])
		}
		shape := v.GetShape()
		dims := make([]int, len(shape))
		for j, d := range shape {
			dims[j] = int(d)
		}
		if err := npy.WriteFile(files[i], dims, t.GetData()); err != nil {
			return err
		}
	}
	return nil
}

// timeRuns runs the session n more times and prints the median latency;
// each run's outputs are destroyed before the next.
func timeRuns(s *ort.Session, in []ort.Value, outputs, n int) error {
	times := make([]time.Duration, 0, n)
	for range n {
		out := make([]ort.Value, outputs)
		t0 := time.Now()
		err := s.Run(context.Background(), in, out)
		times = append(times, time.Since(t0))
		destroy(out)
		if err != nil {
			return err
		}
	}
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("median %.2f ms over %d runs (min %.2f, max %.2f)\n", ms(times[n/2]), n, ms(times[0]), ms(times[n-1]))
	return nil
}

// destroy frees the tensors that were made (nil ones are skipped).
func destroy(vals []ort.Value) {
	for _, v := range vals {
		if v != nil {
			v.Destroy()
		}
	}
}
