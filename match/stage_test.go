package match

import (
	"context"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/queue"
)

// hitQueue is the stage's output as the test reads it.
type hitQueue struct{ q *queue.Queue[*face.Hit] }

func (h hitQueue) Publish(_ context.Context, hit *face.Hit) error { h.q.Push(hit); return nil }

// srShot is a CelebA photo framed as SR frames a face (the aligned box), as
// a shot of camera "door".
func srShot(t *testing.T, name string, track uint64) *face.Shot {
	t.Helper()
	img := loadCeleba(t, name).(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(celebaBox)
	lbl := 1
	return &face.Shot{
		Probe:      &face.Probe{Camera: "door", TrackID: track, FacePx: 14, LRSize: 16, Box: face.Rect{X0: 10, Y0: 20, X1: 24, Y1: 34}},
		SR:         faceimg.FromImage(img),
		Labels:     []int{1},
		Attributes: []face.Attribute{{Name: "male", Label: &lbl, Source: face.LabelsOperator}},
		Run:        face.SR{Sampler: "fast", Evals: 32, Scale: 8, LRSize: 16},
	}
}

// stageGallery is an encrypted gallery (closed at cleanup) with fx's people
// enrolled, their SR faces found in the aligned box.
func stageGallery(t *testing.T, emb *Embedder, fx galleryFixture, th Thresholds) *Gallery {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	g, err := Open(ctx, Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: newKey(t, dir), Embedder: emb, Finder: FixedBox(celebaBox), Thresholds: &th})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	for _, p := range fx.people {
		var photos []Photo
		for _, n := range fx.enrol[p] {
			photos = append(photos, Photo{Source: n, Data: readCeleba(t, n)})
		}
		if _, err := g.Add(ctx, p, photos); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// TestStageDecidesEveryShot: one SR batch of a known face, a stranger and a
// shot the embedder cannot take is embedded together; the bad shot fails
// alone and the other two are decided; Run stops when its context ends.
func TestStageDecidesEveryShot(t *testing.T) {
	emb := testEmbedder(t)
	fx := newFixture(t, 2, 3)
	ctx := context.Background()
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	g := stageGallery(t, emb, fx, th)
	bad := &face.Shot{Probe: &face.Probe{Camera: "door", TrackID: 3}, SR: &faceimg.Planar{W: 4, H: 4, Pix: make([]float32, 5)}}
	in, out := queue.New[[]*face.Shot](4), queue.New[*face.Hit](8)
	models := map[string]string{"embedder": emb.ModelID()}
	st, err := NewStage(StageOptions{In: in, Out: hitQueue{out}, Gallery: g, TopK: 2, Thresholds: th, Models: models})
	if err != nil {
		t.Fatal(err)
	}
	in.Push([]*face.Shot{srShot(t, fx.probe[fx.people[1]], 1), srShot(t, fx.strangers[0], 2), bad})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(rctx) }()
	got := map[uint64]*face.Hit{}
	for len(got) < 3 {
		h, err := out.Pop(rctx)
		if err != nil {
			t.Fatal(err)
		}
		got[h.TrackID] = h
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if h := got[1]; !h.Match.Known || h.Match.Name != fx.people[1] || h.Match.Reason != "" || len(h.Match.TopK) != 2 ||
		h.Match.Threshold != th.Identify || h.Models["embedder"] != emb.ModelID() || h.Camera != "door" || h.FacePx != 14 ||
		h.Box != (face.Box{X: 10, Y: 20, W: 14, H: 14}) || len(h.SRJPEG) == 0 || h.SR.Sampler != "fast" || *h.Attributes[0].Label != 1 {
		t.Errorf("known face: %+v", h)
	}
	if h := got[2]; h.Match.Known || (h.Match.Reason != face.ReasonBelowThreshold && h.Match.Reason != face.ReasonAmbiguous) {
		t.Errorf("stranger: %+v", h.Match)
	}
	if h := got[3]; h.Match.Known || h.Match.Reason != face.ReasonSearchFailed || h.Match.TopK == nil {
		t.Errorf("bad shot: %+v", h.Match)
	}
	// one batch call, then each shot alone after it failed
	if s := st.Stats(); s.Shots != 3 || s.Known != 1 || s.Unknown != 2 || s.SearchFailed != 1 || s.Batches != 4 {
		t.Errorf("stats %+v", s)
	}
	if sr, m := st.TakeLatencies(); len(sr) != 3 || len(m) != 3 {
		t.Errorf("latencies %v %v", sr, m)
	}
	if sr, _ := st.TakeLatencies(); len(sr) != 0 {
		t.Errorf("latencies not reset: %v", sr)
	}
}

// TestStageWithoutGallery: no gallery yet (no key file) makes every face
// unknown with the no_gallery reason, and nothing is embedded.
func TestStageWithoutGallery(t *testing.T) {
	in, out := queue.New[[]*face.Shot](1), queue.New[*face.Hit](1)
	st, err := NewStage(StageOptions{In: in, Out: hitQueue{out}, Thresholds: DefaultThresholds()})
	if err != nil {
		t.Fatal(err)
	}
	in.Push([]*face.Shot{{Probe: &face.Probe{Camera: "yard"}, SR: faceimg.NewPlanar(8, 8)}})
	in.Close()
	if err := st.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, ok, _ := out.TryPop()
	if !ok || h.Match.Known || h.Match.Reason != face.ReasonNoGallery || h.Match.TopK == nil {
		t.Fatalf("hit %+v", h)
	}
	if s := st.Stats(); s.Batches != 0 || s.Unknown != 1 {
		t.Errorf("stats %+v", s)
	}
	if _, err := NewStage(StageOptions{In: in, Out: hitQueue{out}, Thresholds: Thresholds{Identify: 2}}); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Errorf("bad thresholds: %v", err)
	}
}

// TestNewHitMargin: the hit's similarity and margin are the numbers the
// decision compared with the thresholds.
func TestNewHitMargin(t *testing.T) {
	th := Thresholds{Identify: 0.9, Margin: 0.05}
	ada := Candidate{PersonID: 1, Name: "Ada", Similarity: 0.95, Watchlist: true}
	bob := Candidate{PersonID: 2, Name: "Bob", Similarity: 0.91}
	cases := []struct {
		name   string
		r      *SearchResult
		reason string
		want   face.Match
	}{
		{"known, runner-up", &SearchResult{Candidates: []Candidate{ada, {PersonID: 2, Name: "Bob", Similarity: 0.5}}, Match: &ada}, "",
			face.Match{Known: true, PersonID: 1, Name: "Ada", Similarity: 0.95, Margin: 0.45, Watchlist: true, Threshold: 0.9,
				TopK: []face.Candidate{{PersonID: 1, Name: "Ada", Similarity: 0.95, Watchlist: true}, {PersonID: 2, Name: "Bob", Similarity: 0.5}}}},
		{"known, alone", &SearchResult{Candidates: []Candidate{ada}, Match: &ada}, "",
			face.Match{Known: true, PersonID: 1, Name: "Ada", Similarity: 0.95, Margin: 0.95, Watchlist: true, Threshold: 0.9,
				TopK: []face.Candidate{{PersonID: 1, Name: "Ada", Similarity: 0.95, Watchlist: true}}}},
		{"ambiguous", &SearchResult{Candidates: []Candidate{ada, bob}, Reason: face.ReasonAmbiguous}, "",
			face.Match{Similarity: 0.95, Margin: 0.95 - 0.91, Reason: face.ReasonAmbiguous, Threshold: 0.9,
				TopK: []face.Candidate{{PersonID: 1, Name: "Ada", Similarity: 0.95, Watchlist: true}, {PersonID: 2, Name: "Bob", Similarity: 0.91}}}},
		{"empty gallery", &SearchResult{Reason: face.ReasonEmpty}, "", face.Match{Reason: face.ReasonEmpty, Threshold: 0.9, TopK: []face.Candidate{}}},
		{"not searched", nil, face.ReasonSearchFailed, face.Match{Reason: face.ReasonSearchFailed, Threshold: 0.9, TopK: []face.Candidate{}}},
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	sh := &face.Shot{Probe: &face.Probe{Camera: "door", TrackID: 4, FrameTime: now.Add(-time.Second), Score: 0.9,
		Quality: face.Quality{Sharpness: 0.4, Frontal: 0.7}}, SR: faceimg.NewPlanar(8, 8)}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := NewHit(sh, c.r, c.reason, th, nil, now)
			if m := h.Match; m.Known != c.want.Known || m.PersonID != c.want.PersonID || m.Name != c.want.Name ||
				!closeTo(m.Similarity, c.want.Similarity) || !closeTo(m.Margin, c.want.Margin) || m.Watchlist != c.want.Watchlist ||
				m.Reason != c.want.Reason || m.Threshold != c.want.Threshold || !slices.Equal(m.TopK, c.want.TopK) || m.TopK == nil {
				t.Errorf("match %+v, want %+v", m, c.want)
			}
			if len(h.ID) != 26 || !h.Time.Equal(now) || !h.FrameTime.Equal(now.Add(-time.Second)) || h.DetectScore != 0.9 ||
				h.Sharpness != 0.4 || h.Frontalness != 0.7 || len(h.SRJPEG) == 0 || h.LRPNG != nil {
				t.Errorf("hit %+v", h)
			}
		})
	}
}

func closeTo(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

// TestStageFusesSamples: a shot's posterior samples (face.Shot.Samples) are
// embedded in the same call as the other shots and fused with its SR into
// its one descriptor (Fuse); a shot whose sample the embedder cannot take
// fails alone.
func TestStageFusesSamples(t *testing.T) {
	emb := testEmbedder(t)
	fx := newFixture(t, 2, 3)
	ctx := context.Background()
	g := stageGallery(t, emb, fx, Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93})
	st, err := NewStage(StageOptions{In: queue.New[[]*face.Shot](1), Out: hitQueue{queue.New[*face.Hit](1)}, Gallery: g, TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	a, b := fx.probe[fx.people[0]], fx.enrol[fx.people[0]][0]
	fused := srShot(t, a, 1)
	fused.Samples = []*faceimg.Planar{srShot(t, b, 1).SR}
	plain := srShot(t, fx.strangers[0], 2)
	broken := srShot(t, a, 3)
	broken.Samples = []*faceimg.Planar{{W: 4, H: 4, Pix: make([]float32, 5)}}
	obs := st.embed(ctx, []*face.Shot{fused, plain, broken})

	single, err := g.EmbedFaces(ctx, []EmbedInput{{Planar: fused.SR, Scale: 8}, {Planar: fused.Samples[0], Scale: 8}, {Planar: plain.SR, Scale: 8}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Fuse([][]float32{single[0].Vector, single[1].Vector}, nil)
	if err != nil {
		t.Fatal(err)
	}
	near := func(x, y []float32) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if d := x[i] - y[i]; d > 1e-5 || d < -1e-5 {
				return false
			}
		}
		return true
	}
	if obs[0].err != nil || !near(obs[0].emb.Vector, want) || near(obs[0].emb.Vector, single[0].Vector) {
		t.Errorf("shot with a sample: err %v, descriptor not the fused one", obs[0].err)
	}
	if obs[1].err != nil || !near(obs[1].emb.Vector, single[2].Vector) {
		t.Errorf("shot without samples: err %v, descriptor not its SR's", obs[1].err)
	}
	if obs[2].err == nil || obs[2].emb != nil {
		t.Errorf("shot with a broken sample: err %v", obs[2].err)
	}
}

// TestStageDirectThresholds: a direct face is decided by the direct
// setting of its scale, an SR face or a direct scale without one by the SR
// thresholds; a bad direct setting is refused.
func TestStageDirectThresholds(t *testing.T) {
	sr := Thresholds{Identify: 0.664, Verify: 0.6}
	d3 := Thresholds{Identify: 0.68, Margin: 0.05, Verify: 0.6}
	opts := func(direct map[int]Thresholds) StageOptions {
		return StageOptions{In: queue.New[[]*face.Shot](1), Out: hitQueue{queue.New[*face.Hit](1)}, Thresholds: sr, Direct: direct}
	}
	st, err := NewStage(opts(map[int]Thresholds{3: d3}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		run  face.SR
		want Thresholds
	}{
		{face.SR{Sampler: "fast", Scale: 8}, sr},
		{face.SR{Sampler: face.DirectSampler, Scale: 3}, d3},
		{face.SR{Sampler: face.DirectSampler, Scale: 4}, sr},
		{face.SR{Sampler: "fast", Scale: 3}, sr},
	} {
		if got := st.thresholds(&face.Shot{Run: c.run}); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.run, got, c.want)
		}
	}
	for _, bad := range []map[int]Thresholds{{8: d3}, {3: {Identify: 2}}} {
		if _, err := NewStage(opts(bad)); err == nil {
			t.Errorf("direct %v accepted", bad)
		}
	}
}
