package match

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"

	"github.com/srdgd/srdgd/internal/ort"
)

// FaceEmbedder turns faces into L2-normalised identity descriptors. ModelID
// names the descriptor space: descriptors with different ids are not
// comparable.
type FaceEmbedder interface {
	ModelID() string
	Embed(ctx context.Context, faces []EmbedInput) ([]Embedding, error)
}

// Embedding is one face's descriptor.
type Embedding struct {
	// Vector is the L2-normalised descriptor (128 values for face-api's net).
	Vector []float32
	// Model is the ModelID of the embedder that made it.
	Model string
	// Adapter is the ID of the SR adapter that mapped it ("" for none).
	Adapter string
	// Landmarks found on the face (image coordinates) and the aligned box
	// (AlignBox, before clipping) the descriptor was computed from.
	Landmarks Landmarks
	Aligned   image.Rectangle
}

// The slots the two networks are loaded into (models/README.md "Face
// embedder"): names and shapes are checked at load.
var (
	embedderSlot = ort.Slot{
		Name: "face embedder", Kind: "face_embedder",
		Inputs: []string{"image"}, Outputs: []string{"embedding"},
		Meta: []string{"srdgd.contract", "srdgd.name", "srdgd.input_range"},
	}
	landmarksSlot = ort.Slot{
		Name: "face landmarks", Kind: "face_landmarks",
		Inputs: []string{"image"}, Outputs: []string{"landmarks"},
		Meta: []string{"srdgd.contract", "srdgd.name", "srdgd.input_range"},
	}
)

// EmbedderOptions configure NewEmbedder.
type EmbedderOptions struct {
	// Runtime is the ONNX Runtime handle (ort.Open); required, not closed by
	// the embedder.
	Runtime *ort.Runtime
	// EmbedderPath and LandmarksPath are the ONNX files
	// (models/dist/face_embedder.onnx, models/dist/face_landmarks68.onnx).
	EmbedderPath, LandmarksPath string
	// Session chooses execution providers and threads; the zero value lets
	// internal/ort pick (TensorRT -> CUDA -> CPU).
	Session ort.SessionOptions
	// MaxBatch is the most faces per network call; default 16.
	MaxBatch int
	// Log receives load messages; default discards.
	Log *slog.Logger
}

// Embedder is the descriptor pipeline on ONNX Runtime: face-api's 68
// landmarks on the detector's box, the alignment the embedder's metadata asks
// for (face-api's dlib box for its 150x150 net, a 5-point similarity warp for
// the InsightFace-style nets), the embedder, L2 normalisation. Safe for
// concurrent use (calls are serialised).
type Embedder struct {
	mu       sync.Mutex
	emb, lmk *ort.Session
	id       string
	dim      int
	size     int           // embedder input side (srdgd.input_size)
	align    string        // alignDlib or alignSimilarity5 (srdgd.align)
	template [5][2]float64 // srdgd.align_template, for alignSimilarity5
	maxBatch int
	batches  map[int]*batchBuffers
	adapters map[int]*Adapter // by scale (UseAdapter)
	log      *slog.Logger
}

var _ FaceEmbedder = (*Embedder)(nil)

// batchBuffers are the tensors for one batch size, allocated once and reused.
type batchBuffers struct {
	lmkIn, lmkOut, embIn, embOut     []float32
	tensors                          []ort.Value
	lmkInT, lmkOutT, embInT, embOutT ort.Value
}

// NewEmbedder loads and checks both networks.
func NewEmbedder(o EmbedderOptions) (*Embedder, error) {
	if o.Runtime == nil {
		return nil, fmt.Errorf("face embedder: no ONNX Runtime given")
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 16
	}
	if o.MaxBatch < 0 {
		return nil, fmt.Errorf("face embedder: max batch %d, want > 0", o.MaxBatch)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	embHash, err := fileHash(o.EmbedderPath)
	if err != nil {
		return nil, fmt.Errorf("face embedder: %w", err)
	}
	lmkHash, err := fileHash(o.LandmarksPath)
	if err != nil {
		return nil, fmt.Errorf("face landmarks: %w", err)
	}
	emb, err := o.Runtime.NewSession(o.EmbedderPath, embedderSlot, o.Session)
	if err != nil {
		return nil, err
	}
	lmk, err := o.Runtime.NewSession(o.LandmarksPath, landmarksSlot, o.Session)
	if err != nil {
		emb.Close()
		return nil, err
	}
	e := &Embedder{emb: emb, lmk: lmk, maxBatch: o.MaxBatch, batches: map[int]*batchBuffers{}, log: o.Log}
	if err := e.checkMeta(o.EmbedderPath, o.LandmarksPath); err != nil {
		e.Close()
		return nil, err
	}
	// The descriptor space depends on both networks: alignment comes from the
	// landmarks. The name makes the id readable, the hashes make it exact.
	e.id = fmt.Sprintf("%s@%s+%s", emb.Meta["srdgd.name"], embHash[:16], lmkHash[:8])
	o.Log.Info("face embedder loaded", "model", e.id, "provider", emb.Provider, "dim", e.dim)
	return e, nil
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("model file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkMeta verifies the contract values the pipeline depends on, listing
// every mismatch.
func (e *Embedder) checkMeta(embPath, lmkPath string) error {
	var probs []string
	check := func(path string, s *ort.Session, key, want string) {
		if v := s.Meta[key]; v != want {
			probs = append(probs, fmt.Sprintf("%s: %s is %q, want %q", path, key, v, want))
		}
	}
	for _, c := range []struct {
		path string
		s    *ort.Session
	}{{embPath, e.emb}, {lmkPath, e.lmk}} {
		check(c.path, c.s, "srdgd.contract", "1")
		if r := c.s.Meta["srdgd.input_range"]; !rangeIs01(r) {
			probs = append(probs, fmt.Sprintf("%s: srdgd.input_range is %q, want 0,1", c.path, r))
		}
	}
	e.size = 0
	if n, err := strconv.Atoi(e.emb.Meta["srdgd.input_size"]); err != nil || n < 16 || n > 1024 {
		probs = append(probs, fmt.Sprintf("%s: srdgd.input_size is %q, want an integer in 16..1024", embPath, e.emb.Meta["srdgd.input_size"]))
	} else {
		e.size = n
	}
	if v, ok := e.emb.Meta["srdgd.input_layout"]; ok && v != "NCHW RGB" {
		probs = append(probs, fmt.Sprintf("%s: srdgd.input_layout is %q, want \"NCHW RGB\"", embPath, v))
	}
	switch e.align = e.emb.Meta["srdgd.align"]; e.align {
	case "":
		e.align = alignDlib
	case alignDlib:
	case alignSimilarity5:
		if e.size > 0 {
			t, err := parseTemplate(e.emb.Meta["srdgd.align_template"], e.size)
			if err != nil {
				probs = append(probs, fmt.Sprintf("%s: %v", embPath, err))
			}
			e.template = t
		}
	default:
		probs = append(probs, fmt.Sprintf("%s: srdgd.align is %q, want %q or %q", embPath, e.align, alignDlib, alignSimilarity5))
	}
	e.dim = 128
	if d, ok := e.emb.Meta["srdgd.embedding_dim"]; ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			probs = append(probs, fmt.Sprintf("%s: srdgd.embedding_dim is %q, want a positive integer", embPath, d))
		} else {
			e.dim = n
		}
	}
	if v, ok := e.lmk.Meta["srdgd.num_landmarks"]; ok && v != strconv.Itoa(numPoints) {
		probs = append(probs, fmt.Sprintf("%s: srdgd.num_landmarks is %q, want %d", lmkPath, v, numPoints))
	}
	if v, ok := e.lmk.Meta["srdgd.input_size"]; ok && v != strconv.Itoa(landmarkSize) {
		probs = append(probs, fmt.Sprintf("%s: srdgd.input_size is %q, want %d", lmkPath, v, landmarkSize))
	}
	if len(probs) > 0 {
		return fmt.Errorf("face embedder: %v", probs)
	}
	return nil
}

// rangeIs01 accepts "0,1" with optional brackets and spaces.
func rangeIs01(s string) bool {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '[', ']', '(', ')':
		default:
			b = append(b, s[i])
		}
	}
	switch string(b) {
	case "0,1", "0.0,1.0", "0,1.0", "0.0,1":
		return true
	}
	return false
}

// ModelID is "srdgd.name@<embedder sha256 prefix>+<landmarks sha256 prefix>".
func (e *Embedder) ModelID() string { return e.id }

// Dim is the descriptor length.
func (e *Embedder) Dim() int { return e.dim }

// Close releases both sessions and the batch tensors.
func (e *Embedder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.batches {
		for _, t := range b.tensors {
			t.Destroy()
		}
	}
	e.batches = map[int]*batchBuffers{}
	var errs []error
	if e.emb != nil {
		errs = append(errs, e.emb.Close())
		e.emb = nil
	}
	if e.lmk != nil {
		errs = append(errs, e.lmk.Close())
		e.lmk = nil
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *Embedder) buffers(b int) (*batchBuffers, error) {
	if bb, ok := e.batches[b]; ok {
		return bb, nil
	}
	bb := &batchBuffers{
		lmkIn:  make([]float32, b*3*landmarkSize*landmarkSize),
		lmkOut: make([]float32, b*numPoints*2),
		embIn:  make([]float32, b*3*e.size*e.size),
		embOut: make([]float32, b*e.dim),
	}
	mk := func(data []float32, shape ...int64) (ort.Value, error) {
		t, err := ort.NewTensor(data, shape...)
		if err != nil {
			for _, t := range bb.tensors {
				t.Destroy()
			}
			return nil, fmt.Errorf("face embedder: tensor %v: %w", shape, err)
		}
		bb.tensors = append(bb.tensors, t)
		return t, nil
	}
	var err error
	B := int64(b)
	if bb.lmkInT, err = mk(bb.lmkIn, B, 3, landmarkSize, landmarkSize); err != nil {
		return nil, err
	}
	if bb.lmkOutT, err = mk(bb.lmkOut, B, numPoints, 2); err != nil {
		return nil, err
	}
	S := int64(e.size)
	if bb.embInT, err = mk(bb.embIn, B, 3, S, S); err != nil {
		return nil, err
	}
	if bb.embOutT, err = mk(bb.embOut, B, int64(e.dim)); err != nil {
		return nil, err
	}
	e.batches[b] = bb
	return bb, nil
}

// Embed computes one descriptor per face, at most MaxBatch faces per network
// call. An unusable face (empty image, box outside it) fails the whole call
// with an error naming its index.
func (e *Embedder) Embed(ctx context.Context, faces []EmbedInput) ([]Embedding, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.emb == nil {
		return nil, fmt.Errorf("face embedder: closed")
	}
	out := make([]Embedding, 0, len(faces))
	for start := 0; start < len(faces); start += e.maxBatch {
		chunk := faces[start:min(start+e.maxBatch, len(faces))]
		res, err := e.embedBatch(ctx, chunk, start)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, e.adapt(ctx, faces, out)
}

// UseAdapter makes a maps the descriptors of faces restored at its scale
// (EmbedInput.Scale); a must have been made for this embedder. The caller
// keeps a open while the embedder is used and closes it after.
func (e *Embedder) UseAdapter(a *Adapter) error {
	if err := a.Fits(e.id, e.dim); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.adapters == nil {
		e.adapters = map[int]*Adapter{}
	}
	e.adapters[a.Scale()] = a
	return nil
}

// AdapterID is the ID of the SR adapter used at scale ("" for none).
func (e *Embedder) AdapterID(scale int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.adapters[scale]; a != nil {
		return a.ID()
	}
	return ""
}

// adapt maps the descriptors of the restored faces with their scale's
// adapter, one call per scale.
func (e *Embedder) adapt(ctx context.Context, faces []EmbedInput, out []Embedding) error {
	for scale, a := range e.adapters {
		var idx []int
		var vecs [][]float32
		for i, f := range faces {
			if f.Scale == scale {
				idx, vecs = append(idx, i), append(vecs, out[i].Vector)
			}
		}
		if err := a.Apply(ctx, vecs); err != nil {
			return fmt.Errorf("face embedder: %w", err)
		}
		for _, i := range idx {
			out[i].Adapter = a.ID()
		}
	}
	return nil
}

func (e *Embedder) embedBatch(ctx context.Context, faces []EmbedInput, first int) ([]Embedding, error) {
	bb, err := e.buffers(len(faces))
	if err != nil {
		return nil, err
	}
	const ln = 3 * landmarkSize * landmarkSize
	origins := make([]image.Point, len(faces))
	sides := make([]int, len(faces))
	for i, f := range faces {
		box, err := f.box()
		if err != nil {
			return nil, fmt.Errorf("face %d: %w", first+i, err)
		}
		origins[i], sides[i], err = squareCrop(f, box, landmarkSize, bb.lmkIn[i*ln:(i+1)*ln])
		if err != nil {
			return nil, fmt.Errorf("face %d: landmark crop: %w", first+i, err)
		}
	}
	if err := e.lmk.Run(ctx, []ort.Value{bb.lmkInT}, []ort.Value{bb.lmkOutT}); err != nil {
		return nil, fmt.Errorf("face landmarks: %w", err)
	}
	en := 3 * e.size * e.size
	res := make([]Embedding, len(faces))
	for i, f := range faces {
		var l Landmarks
		for p := 0; p < numPoints; p++ {
			rx, ry := bb.lmkOut[(i*numPoints+p)*2], bb.lmkOut[(i*numPoints+p)*2+1]
			l[p][0] = float64(origins[i].X) + float64(rx)*float64(sides[i])
			l[p][1] = float64(origins[i].Y) + float64(ry)*float64(sides[i])
		}
		ab, err := e.alignedCrop(f, &l, bb.embIn[i*en:(i+1)*en])
		if err != nil {
			return nil, fmt.Errorf("face %d: aligned crop %v from landmarks: %w", first+i, ab, err)
		}
		res[i].Landmarks, res[i].Aligned, res[i].Model = l, ab, e.id
	}
	if err := e.emb.Run(ctx, []ort.Value{bb.embInT}, []ort.Value{bb.embOutT}); err != nil {
		return nil, fmt.Errorf("face embedder: %w", err)
	}
	for i := range res {
		v := make([]float32, e.dim)
		copy(v, bb.embOut[i*e.dim:(i+1)*e.dim])
		if err := normalise(v); err != nil {
			return nil, fmt.Errorf("face %d: %w", first+i, err)
		}
		res[i].Vector = v
	}
	return res, nil
}

// alignedCrop cuts the embedder's input for one face from its landmarks, the
// way srdgd.align says, and returns the image box it covers.
func (e *Embedder) alignedCrop(f EmbedInput, l *Landmarks, dst []float32) (image.Rectangle, error) {
	if e.align == alignDlib {
		ab := l.AlignBox()
		_, _, err := squareCrop(f, ab, e.size, dst)
		return ab, err
	}
	src := l.Five()
	for i := range src { // landmarks are continuous (pixel i covers [i, i+1)); the template is pixel-centre
		src[i][0] -= 0.5
		src[i][1] -= 0.5
	}
	s, err := fitSimilarity(src, e.template)
	if err != nil {
		return image.Rectangle{}, err
	}
	return warpCrop(f, s, e.size, dst)
}

// normalise scales v to unit L2 norm in place.
func normalise(v []float32) error {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := math.Sqrt(s)
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return fmt.Errorf("descriptor norm is %v", n)
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
	return nil
}

// Cosine is the cosine similarity of two descriptors (their dot product when
// both are L2-normalised, as Embed returns them). Lengths must match.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return math.NaN()
	}
	return d / math.Sqrt(na*nb)
}
