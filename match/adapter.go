package match

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/srdgd/srdgd/internal/ort"
)

// adapterSlot is an SR-aware embedding (models/train/sr_adapter.py): a
// small network on the embedder's descriptor of a super-resolved face that
// moves it towards where the embedder puts the HR face.
var adapterSlot = ort.Slot{
	Name: "SR adapter", Kind: "sr_adapter",
	Inputs: []string{"embedding"}, Outputs: []string{"adapted"},
	Meta: []string{"srdgd.contract", "srdgd.name", "srdgd.scale", "srdgd.embedder_model", "srdgd.dim"},
}

// Adapter maps descriptors of faces restored at one scale (never photos:
// the gallery stays HR). It is made for one embedder model (its metadata's
// srdgd.embedder_model) and refuses another. Safe for concurrent use.
type Adapter struct {
	mu       sync.Mutex
	s        *ort.Session
	path     string
	scale    int
	dim      int
	embedder string
	id       string
}

// OpenAdapter loads an adapter file and checks its contract.
func OpenAdapter(rt *ort.Runtime, path string, o ort.SessionOptions) (*Adapter, error) {
	if rt == nil {
		return nil, fmt.Errorf("SR adapter: no ONNX Runtime given")
	}
	hash, err := fileHash(path)
	if err != nil {
		return nil, fmt.Errorf("SR adapter: %w", err)
	}
	s, err := rt.NewSession(path, adapterSlot, o)
	if err != nil {
		return nil, err
	}
	a := &Adapter{s: s, path: path, embedder: s.Meta["srdgd.embedder_model"]}
	a.id = s.Meta["srdgd.name"] + "@" + hash[:16]
	var probs []string
	if v := s.Meta["srdgd.contract"]; v != "1" {
		probs = append(probs, fmt.Sprintf("srdgd.contract is %q, want \"1\"", v))
	}
	if a.scale, err = strconv.Atoi(s.Meta["srdgd.scale"]); err != nil || (a.scale != 8 && a.scale != 16) {
		probs = append(probs, fmt.Sprintf("srdgd.scale is %q, want 8 or 16", s.Meta["srdgd.scale"]))
	}
	if a.dim, err = strconv.Atoi(s.Meta["srdgd.dim"]); err != nil || a.dim <= 0 || a.dim > 4096 {
		probs = append(probs, fmt.Sprintf("srdgd.dim is %q, want an integer in 1..4096", s.Meta["srdgd.dim"]))
	}
	if a.embedder == "" {
		probs = append(probs, "srdgd.embedder_model is empty")
	}
	if len(probs) > 0 {
		s.Close()
		return nil, fmt.Errorf("SR adapter %s: %v", path, probs)
	}
	return a, nil
}

// AdapterFile is the file name of the SR adapter of a scale in a models
// folder.
func AdapterFile(scale int) string { return fmt.Sprintf("sr_adapter_x%d.onnx", scale) }

// OpenAdapterFor opens the adapter at path for the faces emb restores at
// scale: it must be for that scale and made for emb.
func OpenAdapterFor(rt *ort.Runtime, path string, scale int, o ort.SessionOptions, emb *Embedder) (*Adapter, error) {
	a, err := OpenAdapter(rt, path, o)
	if err != nil {
		return nil, err
	}
	if a.scale != scale {
		err = fmt.Errorf("SR adapter %s is for x%d, named for x%d", path, a.scale, scale)
	} else {
		err = a.Fits(emb.ModelID(), emb.Dim())
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Scale is the upscaling factor whose restored faces the adapter is for.
func (a *Adapter) Scale() int { return a.scale }

// EmbedderModel is the embedder model ID the adapter was trained on.
func (a *Adapter) EmbedderModel() string { return a.embedder }

// ID is "srdgd.name@<sha256 prefix of the file>".
func (a *Adapter) ID() string { return a.id }

// Fits says why the adapter cannot serve descriptors of the embedder
// model with dim values (nil: it can).
func (a *Adapter) Fits(model string, dim int) error {
	if model != a.embedder || dim != a.dim {
		return fmt.Errorf("SR adapter %s: made for %s (%d-d), the embedder is %s (%d-d): retrain it for this embedder or remove it", a.path, a.embedder, a.dim, model, dim)
	}
	return nil
}

// Apply maps the descriptors in place to unit-length adapted ones.
func (a *Adapter) Apply(ctx context.Context, vecs [][]float32) error {
	if len(vecs) == 0 {
		return nil
	}
	in := make([]float32, 0, len(vecs)*a.dim)
	for i, v := range vecs {
		if len(v) != a.dim {
			return fmt.Errorf("SR adapter %s: descriptor %d has %d values, want %d", a.path, i, len(v), a.dim)
		}
		in = append(in, v...)
	}
	out := make([]float32, len(in))
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.s == nil {
		return fmt.Errorf("SR adapter %s: closed", a.path)
	}
	ti, err := ort.NewTensor(in, int64(len(vecs)), int64(a.dim))
	if err != nil {
		return err
	}
	defer ti.Destroy()
	to, err := ort.NewTensor(out, int64(len(vecs)), int64(a.dim))
	if err != nil {
		return err
	}
	defer to.Destroy()
	if err := a.s.Run(ctx, []ort.Value{ti}, []ort.Value{to}); err != nil {
		return err
	}
	for i := range vecs {
		v := out[i*a.dim : (i+1)*a.dim]
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if n = math.Sqrt(n); n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
			return fmt.Errorf("SR adapter %s: descriptor %d came out with norm %v", a.path, i, n)
		}
		for k, x := range v {
			vecs[i][k] = float32(float64(x) / n)
		}
	}
	return nil
}

// Close releases the session.
func (a *Adapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.s == nil {
		return nil
	}
	err := a.s.Close()
	a.s = nil
	return err
}
