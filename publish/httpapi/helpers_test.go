package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// memHistory is an in-memory hit history and audit log with the semantics
// planned for publish/history (newest first, pagination by id, audit
// entries numbered from 1). failAudit makes Audit fail, as a full disk would.
type memHistory struct {
	mu        sync.Mutex
	hits      []*face.Hit // oldest first
	audit     []httpapi.AuditRecord
	failAudit bool
}

var (
	_ httpapi.Hits    = (*memHistory)(nil)
	_ httpapi.Auditor = (*memHistory)(nil)
)

func (m *memHistory) add(h *face.Hit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hits = append(m.hits, h)
	slices.SortFunc(m.hits, func(a, b *face.Hit) int { return strings.Compare(a.ID, b.ID) })
}

func (m *memHistory) ListHits(ctx context.Context, q httpapi.HitQuery) ([]*face.Hit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*face.Hit
	for i := len(m.hits) - 1; i >= 0 && len(out) < q.Limit; i-- {
		h := m.hits[i]
		switch {
		case q.Before != "" && h.ID >= q.Before,
			q.Camera != "" && h.Camera != q.Camera,
			q.Person != "" && h.Match.Name != q.Person,
			q.Known != nil && h.Match.Known != *q.Known,
			!q.Since.IsZero() && h.Time.Before(q.Since):
			continue
		}
		c := *h
		c.LRPNG, c.SRJPEG, c.PreviewJPEG = nil, nil, nil
		out = append(out, &c)
	}
	return out, nil
}

func (m *memHistory) GetHit(ctx context.Context, id string) (*face.Hit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.hits {
		if h.ID == id {
			return h, nil
		}
	}
	return nil, fmt.Errorf("hit %s: %w", id, httpapi.ErrNotFound)
}

func (m *memHistory) Audit(ctx context.Context, r httpapi.AuditRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAudit {
		return errors.New("audit log: disk full")
	}
	r.Seq = int64(len(m.audit) + 1)
	r.Time = time.Now().UTC()
	m.audit = append(m.audit, r)
	return nil
}

func (m *memHistory) AuditSearch(ctx context.Context, q httpapi.AuditQuery) ([]httpapi.AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []httpapi.AuditRecord
	for _, r := range m.audit {
		if r.Seq > q.After && (q.Before == 0 || r.Seq < q.Before) && (q.Actor == "" || r.Actor == q.Actor) &&
			(q.Action == "" || r.Action == q.Action || strings.HasSuffix(q.Action, ".") && strings.HasPrefix(r.Action, q.Action)) &&
			(q.Target == "" || r.Target == q.Target) {
			out = append(out, r)
		}
	}
	if q.Newest {
		slices.Reverse(out)
	}
	return out[:min(len(out), q.Limit)], nil
}

// records is a copy of the audit log.
func (m *memHistory) records() []httpapi.AuditRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.audit)
}

func (m *memHistory) auditActions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.audit {
		out = append(out, r.Action+" "+r.Target)
	}
	return out
}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// celebaDir is the CelebA aligned subset, or "" when it is absent.
func celebaDir(t testing.TB) string {
	d, err := celeba.Find()
	if err != nil {
		return ""
	}
	return d
}

// celebaBox is the face box of a CelebA aligned image (columns 29..148,
// rows 56..175; models/README.md).
var celebaBox = celeba.Box

// celebaRow is one row of labels.csv.
type celebaRow struct{ image, split, identity string }

func celebaRows(t testing.TB) []celebaRow {
	t.Helper()
	d := celebaDir(t)
	if d == "" {
		t.Skip("SKIPPING: CelebA aligned subset not found (set SRDGD_TEST_CELEBA)")
	}
	all, err := celeba.Read(d)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]celebaRow, len(all))
	for i, r := range all {
		rows[i] = celebaRow{r.Image, r.Split, r.Identity}
	}
	return rows
}

func celebaPath(t testing.TB, name string) string {
	return celeba.ImagePath(celebaDir(t), name)
}

// faceImage is a real face (the i-th CelebA image, cropped to celebaBox)
// when the data set is here; else a synthetic pattern: the hit tests only
// need well-formed images of the right sizes.
func faceImage(t testing.TB, i int) image.Image {
	t.Helper()
	if celebaDir(t) != "" {
		img, err := faceimg.Load(celebaPath(t, celebaRows(t)[i].image))
		if err != nil {
			t.Fatal(err)
		}
		out := image.NewRGBA(image.Rect(0, 0, 120, 120))
		draw.Copy(out, image.Point{}, img, celebaBox, draw.Src, nil)
		return out
	}
	out := image.NewRGBA(image.Rect(0, 0, 120, 120))
	for y := range 120 {
		for x := range 120 {
			out.Set(x, y, color.RGBA{uint8(2 * x), uint8(2 * y), uint8(40 * i), 255})
		}
	}
	return out
}

func scaled(img image.Image, size int) image.Image {
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.CatmullRom.Scale(out, out.Rect, img, img.Bounds(), draw.Src, nil)
	return out
}

func encJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encPNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// makeHit builds a hit at time at with real images: LR 16x16 PNG, SR and
// preview 128x128 JPEG.
func makeHit(t testing.TB, at time.Time, camera string, faceN int, known bool, name string) *face.Hit {
	img := faceImage(t, faceN)
	lbl := 1
	p := 0.83
	h := &face.Hit{
		ID: face.NewID(at), Camera: camera, FrameTime: at.Add(-300 * time.Millisecond), Time: at, TrackID: 7,
		Box: face.Box{X: 400, Y: 220, W: 16, H: 16}, FrameW: 1920, FrameH: 1080, FacePx: 16,
		DetectScore: 0.91, Sharpness: 0.5, Frontalness: 0.8,
		Attributes: []face.Attribute{{Name: "male", Label: &lbl, Probability: &p, Source: "predicted"}},
		SR:         face.SR{Sampler: "pc", Steps: 100, Evals: 200, Scale: 8, LRSize: 16, Millis: 850, Guided: true, Weight: 1},
		Match: face.Match{Known: known, Similarity: 0.41, Margin: 0.01, Threshold: 0.93, Reason: face.ReasonBelowThreshold,
			TopK: []face.Candidate{{PersonID: 3, Name: "carol", Similarity: 0.41}, {PersonID: 4, Name: "dave", Similarity: 0.40}}},
		Models:      map[string]string{"score": "score_x8"},
		LRPNG:       encPNG(t, scaled(img, 16)),
		SRJPEG:      encJPEG(t, scaled(img, 128)),
		PreviewJPEG: encJPEG(t, scaled(scaled(img, 16), 128)),
	}
	if known {
		h.Match = face.Match{Known: true, Name: name, PersonID: 1, Similarity: 0.95, Margin: 0.1, Threshold: 0.93,
			TopK: []face.Candidate{{PersonID: 1, Name: name, Similarity: 0.95}}}
	}
	outcome := h.Match.Reason
	if known {
		outcome = face.OutcomeNamed
	}
	h.Match.Explanation = match.Explain(outcome, h.Match.TopK, match.Thresholds{Identify: h.Match.Threshold, Margin: 0.02}, 0, "", "")
	return h
}

// running is a server started with Run on 127.0.0.1:0.
type running struct {
	srv  *httpapi.Server
	url  string
	c    *http.Client
	stop func()
}

func start(t *testing.T, o httpapi.Options) *running {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	s, err := httpapi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	c := &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r := &running{srv: s, url: "http://" + s.Addr().String(), c: c}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			c.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run returned %v, want nil", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d body %q: %v", r.status, r.body, err)
	}
}

// apiErr decodes an error body, failing the test if it is not one.
func (r reply) apiErr(t testing.TB) (msg, field string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("status %d: no error message in %q", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error content type %q", ct)
	}
	return e.Error, e.Field
}

// do sends a request; hdr is "Key: value" pairs.
func (r *running) do(t testing.TB, method, path string, body io.Reader, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v // Go sends req.Host, not a Host header
			continue
		}
		req.Header.Add(k, v)
	}
	resp, err := r.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}
