package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/ort"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// celebaTiles finds one face per 178-pixel-wide tile of a row of CelebA
// aligned images side by side (so a two-image composite is a photo of two
// people, and an image narrower than one tile shows nobody).
type celebaTiles struct{}

func (celebaTiles) Find(_ context.Context, img image.Image) ([]image.Rectangle, error) {
	var out []image.Rectangle
	b := img.Bounds()
	for x := b.Min.X; x+178 <= b.Max.X; x += 178 {
		if r := celebaBox.Add(image.Pt(x, b.Min.Y)); r.In(b) {
			out = append(out, r)
		}
	}
	return out, nil
}

// realGallery opens a new encrypted gallery with the shipped face embedder,
// skipping when the model files are absent.
func realGallery(t *testing.T) *match.Gallery {
	t.Helper()
	dist := filepath.Join(repoRoot(t), "models", "dist")
	embPath, lmkPath := filepath.Join(dist, "face_embedder.onnx"), filepath.Join(dist, "face_landmarks68.onnx")
	for _, p := range []string{embPath, lmkPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("SKIPPING: face model %s absent: %v", p, err)
		}
	}
	rt, err := ort.Open("", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("onnxruntime is required with the face models (scripts/fetch-ort.sh): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	emb, err := match.NewEmbedder(match.EmbedderOptions{
		Runtime: rt, EmbedderPath: embPath, LandmarksPath: lmkPath,
		Session: ort.SessionOptions{Providers: []string{ort.CPU}, IntraOpThreads: 1}, MaxBatch: 8,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	dir := t.TempDir()
	key := filepath.Join(dir, "gallery.key")
	if err := match.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	g, err := match.Open(context.Background(), match.Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: key, Embedder: emb, Finder: celebaTiles{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// part is one multipart part: a field value or a file.
type part struct {
	field, file string
	data        []byte
}

func multipartBody(t *testing.T, parts ...part) (*bytes.Buffer, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		var err error
		if p.file == "" {
			err = w.WriteField(p.field, string(p.data))
		} else {
			var fw interface{ Write([]byte) (int, error) }
			fw, err = w.CreateFormFile(p.field, p.file)
			if err == nil {
				_, err = fw.Write(p.data)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, "Content-Type: " + w.FormDataContentType()
}

func readFile(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGalleryEnrolListRemove(t *testing.T) {
	rows := celebaRows(t)
	g := realGallery(t)
	hist := &memHistory{}
	r := start(t, httpapi.Options{Token: token, Gallery: app.NewGalleryAPI(g), Auditor: hist, MaxBodyBytes: 1 << 20})
	auth := "Authorization: Bearer " + token

	// three photos of one person, and a stranger for the two-face photo
	var mine []string
	var stranger string
	for _, row := range rows {
		if row.identity == rows[0].identity && len(mine) < 3 {
			mine = append(mine, row.image)
		} else if row.identity != rows[0].identity && stranger == "" {
			stranger = row.image
		}
	}
	two := image.NewRGBA(image.Rect(0, 0, 356, 218))
	a, err := faceimg.Load(celebaPath(t, mine[0]))
	if err != nil {
		t.Fatal(err)
	}
	b, err := faceimg.Load(celebaPath(t, stranger))
	if err != nil {
		t.Fatal(err)
	}
	draw.Draw(two, image.Rect(0, 0, 178, 218), a, image.Point{}, draw.Src)
	draw.Draw(two, image.Rect(178, 0, 356, 218), b, image.Point{}, draw.Src)
	name := "celeb " + rows[0].identity
	parts := []part{{field: "name", data: []byte(name)}}
	for _, m := range mine {
		parts = append(parts, part{"photo", m, readFile(t, celebaPath(t, m))})
	}
	parts = append(parts,
		part{"photo", "garbage.jpg", []byte("this is not an image")},
		part{"photo", "tiny.png", encPNG(t, image.NewRGBA(image.Rect(0, 0, 40, 40)))},
		part{"photo", `C:\Users\me\two.png`, encPNG(t, two)})
	body, ctype := multipartBody(t, parts...)
	got := r.do(t, "POST", "/api/v1/gallery", body, auth, ctype)
	if got.status != http.StatusCreated {
		t.Fatalf("enrol: %d %s", got.status, got.body)
	}
	var er struct {
		Name     string                `json:"name"`
		Enrolled int                   `json:"enrolled"`
		Photos   []httpapi.PhotoResult `json:"photos"`
	}
	got.json(t, &er)
	want := []string{"enrolled", "enrolled", "enrolled", "unreadable", "no_face", "several_faces"}
	var results, sources []string
	for _, p := range er.Photos {
		results, sources = append(results, p.Result), append(sources, p.Source)
		if (p.Result == "enrolled") != (p.Error == "") {
			t.Errorf("photo %s: result %s error %q", p.Source, p.Result, p.Error)
		}
	}
	if er.Enrolled != 3 || !slices.Equal(results, want) || sources[5] != "two.png" || !slices.Equal(er.Photos[0].Box, []int{29, 56, 149, 176}) {
		t.Fatalf("enrol results: %+v (want %v)", er, want)
	}

	var list struct{ People []httpapi.Person }
	r.do(t, "GET", "/api/v1/gallery", nil, auth).json(t, &list)
	if len(list.People) != 1 || list.People[0].Name != name || list.People[0].Photos != 3 || list.People[0].Searchable == nil || *list.People[0].Searchable != 3 {
		t.Fatalf("list: %+v", list)
	}
	photoPath := "/api/v1/gallery/" + strings.ReplaceAll(name, " ", "%20") + "/photo.jpg"
	if got := r.do(t, "GET", photoPath, nil, auth); got.status != 200 || !bytes.Equal(got.body, readFile(t, celebaPath(t, mine[0]))) {
		t.Fatalf("photo: %d, %d bytes (want the first enrolled photo)", got.status, len(got.body))
	}

	// refused requests change nothing
	refused := []struct {
		name   string
		parts  []part
		ctype  string
		status int
		field  string
	}{
		{"no name", []part{{"photo", mine[0], readFile(t, celebaPath(t, mine[0]))}}, "", 400, "name"},
		{"no photo", []part{{field: "name", data: []byte("x")}}, "", 400, "photo"},
		{"unknown field", []part{{field: "name", data: []byte("x")}, {field: "watchlist", data: []byte("1")}}, "", 400, "watchlist"},
		{"bad name", []part{{field: "name", data: []byte("a\x01b")}, {"photo", mine[0], readFile(t, celebaPath(t, mine[0]))}}, "", 400, "name"},
		{"name twice", []part{{field: "name", data: []byte("x")}, {field: "name", data: []byte("y")}}, "", 400, "name"},
		{"oversized", []part{{field: "name", data: []byte("x")}, {"photo", "big.jpg", make([]byte, 2<<20)}}, "", 413, ""},
		{"not multipart", nil, "Content-Type: application/json", 415, ""},
		{"nothing enrolled", []part{{field: "name", data: []byte("nobody")}, {"photo", "tiny.png", encPNG(t, image.NewRGBA(image.Rect(0, 0, 40, 40)))}}, "", 422, ""},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			body, ctype := multipartBody(t, c.parts...)
			if c.ctype != "" {
				ctype = c.ctype
			}
			got := r.do(t, "POST", "/api/v1/gallery", body, auth, ctype)
			if got.status != c.status {
				t.Fatalf("%d %s, want %d", got.status, got.body, c.status)
			}
			if _, f := got.apiErr(t); f != c.field {
				t.Errorf("field %q, want %q", f, c.field)
			}
		})
	}
	r.do(t, "GET", "/api/v1/gallery", nil, auth).json(t, &list)
	if len(list.People) != 1 {
		t.Fatalf("after refused requests: %+v", list)
	}

	del := "/api/v1/gallery/" + strings.ReplaceAll(name, " ", "%20")
	if got := r.do(t, "DELETE", del, nil, auth); got.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", got.status, got.body)
	}
	r.do(t, "GET", "/api/v1/gallery", nil, auth).json(t, &list)
	if len(list.People) != 0 {
		t.Fatalf("after remove: %+v", list)
	}
	for _, c := range []struct{ method, path string }{{"DELETE", del}, {"GET", photoPath}} {
		if got := r.do(t, c.method, c.path, nil, auth); got.status != http.StatusNotFound {
			t.Errorf("%s %s after remove: %d %s", c.method, c.path, got.status, got.body)
		}
	}
	// the enrolments that added nothing are recorded as failed
	wantAudit := []string{"gallery.add " + name, "gallery.photo " + name, "gallery.add.failed \"a\\x01b\"", "gallery.add.failed nobody", "gallery.remove " + name}
	if got := hist.auditActions(); !slices.Equal(got, wantAudit) {
		t.Errorf("audit %q, want %q", got, wantAudit)
	}
	for _, a := range hist.records() {
		if a.Action == "gallery.add.failed" && a.Target == "nobody" && !strings.HasPrefix(a.Detail, "0 of 1 photos enrolled: tiny.png: ") {
			t.Errorf("failed enrolment recorded without why: %q", a.Detail)
		}
	}
	if d := hist.records()[0].Detail; d != fmt.Sprintf("3 of %d photos enrolled", 6) {
		t.Errorf("enrol audit detail %q", d)
	}
}
