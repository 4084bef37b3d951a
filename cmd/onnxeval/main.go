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
	inInfo, outInfo, md, err := rt.ReadInfo(*model)
	if err != nil {
		return err
	}
	if *meta {
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
	slot := ort.Slot{Name: "model"}
	var inVals []ort.Value
	for _, p := range ins {
		name, file, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("--in %q: want NAME=FILE", p)
		}
		a, err := npy.ReadFile(file)
		if err != nil {
			return err
		}
		shape := make([]int64, len(a.Shape))
		for i, d := range a.Shape {
			shape[i] = int64(d)
		}
		t, err := ort.NewTensor(a.Float32(), shape...)
		if err != nil {
			return fmt.Errorf("input %s: %w", name, err)
		}
		defer t.Destroy()
		slot.Inputs = append(slot.Inputs, name)
		inVals = append(inVals, t)
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
	if err := s.Run(context.Background(), inVals, outVals); err != nil {
		return err
	}
	for i, v := range outVals {
		t, ok := v.(interface {
			GetData() []float32
		})
		if !ok {
			return fmt.Errorf("output %s is not a float32 tensor", slot.Outputs[i])
		}
		shape := v.GetShape()
		dims := make([]int, len(shape))
		for j, d := range shape {
			dims[j] = int(d)
		}
		if err := npy.WriteFile(files[i], dims, t.GetData()); err != nil {
			return err
		}
		defer v.Destroy()
	}
	if *repeat > 0 {
		var times []time.Duration
		for i := 0; i < *repeat; i++ {
			for _, v := range outVals {
				v.Destroy()
			}
			outVals = make([]ort.Value, len(files))
			t0 := time.Now()
			if err := s.Run(context.Background(), inVals, outVals); err != nil {
				return err
			}
			times = append(times, time.Since(t0))
		}
		// simple median
		for i := range times {
			for j := i + 1; j < len(times); j++ {
				if times[j] < times[i] {
					times[i], times[j] = times[j], times[i]
				}
			}
		}
		fmt.Printf("median %.2f ms over %d runs (min %.2f, max %.2f)\n",
			float64(times[len(times)/2].Microseconds())/1000, len(times),
			float64(times[0].Microseconds())/1000, float64(times[len(times)-1].Microseconds())/1000)
	}
	return nil
}
