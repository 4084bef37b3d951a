package match

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srdgd/srdgd/face"
)

// celebaTiles finds one face per 178-pixel-wide tile of a side-by-side
// composite of CelebA aligned images (a photo of several people).
type celebaTiles struct{}

func (celebaTiles) Find(_ context.Context, img image.Image) ([]image.Rectangle, error) {
	var out []image.Rectangle
	b := img.Bounds()
	for x := b.Min.X; x+178 <= b.Max.X; x += 178 {
		r := celebaBox.Add(image.Pt(x, b.Min.Y))
		if r.In(b) {
			out = append(out, r)
		}
	}
	return out, nil
}

func pngBytes(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// galleryFixture picks people from the CelebA train split: enrol photos and
// held-out probe photos per person, and strangers that are never enrolled.
type galleryFixture struct {
	people    []string            // identities to enrol
	enrol     map[string][]string // image names
	probe     map[string]string
	strangers []string // image names of other identities
}

func newFixture(t *testing.T, nPeople, nEnrol int) galleryFixture {
	rows := celebaRows(t)
	ids, imgs := byIdentity(rows, "train")
	f := galleryFixture{enrol: map[string][]string{}, probe: map[string]string{}}
	for _, id := range ids[:nPeople] {
		f.people = append(f.people, "celeb "+id)
		f.enrol["celeb "+id] = imgs[id][:nEnrol]
		f.probe["celeb "+id] = imgs[id][nEnrol]
	}
	// strangers from the other end of the identity list (fixed real data:
	// with these thresholds they are observed to stay unknown)
	for _, id := range ids[len(ids)-3:] {
		f.strangers = append(f.strangers, imgs[id][0])
	}
	return f
}

func newKey(t *testing.T, dir string) string {
	t.Helper()
	k := filepath.Join(dir, "gallery.key")
	if err := GenerateKey(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGalleryRoundTrip(t *testing.T) {
	emb := testEmbedder(t)
	fx := newFixture(t, 4, 3)
	dir := t.TempDir()
	ctx := context.Background()
	// explicit thresholds (about pair FMR 1e-3 and the default margin), so that
	// the test does not move with the defaults
	th := Thresholds{Identify: 0.93, Margin: 0.02, Verify: 0.93}
	opts := Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: newKey(t, dir), Embedder: emb, Finder: celebaTiles{}, Thresholds: &th}
	g, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { g.Close() }()

	// first person: good photos plus one of each kind of reject
	p0 := fx.people[0]
	two := image.NewRGBA(image.Rect(0, 0, 356, 218))
	draw.Draw(two, two.Rect, loadCeleba(t, fx.enrol[p0][0]), image.Point{}, draw.Src)
	draw.Draw(two, image.Rect(178, 0, 356, 218), loadCeleba(t, fx.strangers[0]), image.Point{}, draw.Src)
	photos := []Photo{
		{Source: fx.enrol[p0][0], Data: readCeleba(t, fx.enrol[p0][0])},
		{Source: "garbage.jpg", Data: []byte("this is not an image")},
		{Source: "tiny.png", Data: pngBytes(t, image.NewRGBA(image.Rect(0, 0, 40, 40)))},
		{Source: "two.png", Data: pngBytes(t, two)},
	}
	for _, n := range fx.enrol[p0][1:] {
		photos = append(photos, Photo{Source: n, Data: readCeleba(t, n)})
	}
	res, err := g.Add(ctx, p0, photos)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := map[string]error{"garbage.jpg": ErrUnreadable, "tiny.png": ErrNoFace, "two.png": ErrSeveralFaces}
	for _, r := range res {
		if w, bad := wantErr[r.Source]; bad {
			if r.Enrolled || !errors.Is(r.Err, w) {
				t.Errorf("photo %s: enrolled %v err %v, want rejected with %v", r.Source, r.Enrolled, r.Err, w)
			}
		} else if !r.Enrolled || r.Err != nil || r.Box != celebaBox {
			t.Errorf("photo %s: enrolled %v err %v box %v", r.Source, r.Enrolled, r.Err, r.Box)
		}
	}
	for _, p := range fx.people[1:] {
		ph, err := PhotosFromFiles([]string{celebaPath(t, fx.enrol[p][0]), celebaPath(t, fx.enrol[p][1]), celebaPath(t, fx.enrol[p][2])})
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.Add(ctx, p, ph)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !r.Enrolled {
				t.Fatalf("%s photo %s: %v", p, r.Source, r.Err)
			}
		}
	}
	// a person with only rejected photos is not created
	if res, err := g.Add(ctx, "nobody", []Photo{{Source: "x", Data: []byte("x")}}); err != nil || res[0].Enrolled {
		t.Fatalf("add nobody: %v %+v", err, res)
	}
	if _, err := g.Add(ctx, " padded ", nil); err == nil {
		t.Error("name with spaces accepted")
	}

	checkList := func(g *Gallery, want []string) {
		t.Helper()
		people, err := g.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range people {
			names = append(names, p.Name)
			if p.Images != 3 || p.Searchable != 3 {
				t.Errorf("%s: %d photos, %d searchable, want 3 and 3", p.Name, p.Images, p.Searchable)
			}
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("people %v, want %v", names, want)
		}
	}
	checkList(g, fx.people)

	search := func(g *Gallery, name string) *SearchResult {
		t.Helper()
		r, err := g.Search(ctx, loadCeleba(t, name), 3)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, p := range fx.people {
		r := search(g, fx.probe[p])
		if r.Match == nil || r.Match.Name != p {
			t.Errorf("probe of %s: match %+v reason %s %s; candidates %+v", p, r.Match, r.Reason, r.Detail, r.Candidates)
		} else {
			t.Logf("probe of %s: %.4f, runner-up %.4f", p, r.Match.Similarity, r.Candidates[1].Similarity)
		}
		if len(r.Candidates) != 3 {
			t.Errorf("top-3 has %d candidates", len(r.Candidates))
		}
	}
	for _, s := range fx.strangers {
		r := search(g, s)
		if r.Match != nil {
			t.Errorf("stranger %s matched %+v", s, r.Match)
		} else {
			t.Logf("stranger %s: unknown (%s: %s)", s, r.Reason, r.Detail)
		}
	}
	v, err := g.Verify(ctx, fx.people[1], loadCeleba(t, fx.probe[fx.people[1]]))
	if err != nil || !v.Match {
		t.Errorf("verify own probe: %+v %v", v, err)
	}
	v, err = g.Verify(ctx, fx.people[1], loadCeleba(t, fx.strangers[1]))
	if err != nil || v.Match {
		t.Errorf("verify stranger: %+v %v", v, err)
	}
	if _, err := g.Verify(ctx, "nobody", loadCeleba(t, fx.strangers[1])); !errors.Is(err, ErrNotFound) {
		t.Errorf("verify unknown name: %v", err)
	}

	// watchlist and forced attributes
	yes, no := true, false
	if err := g.SetWatchlist(ctx, fx.people[2], true); err != nil {
		t.Fatal(err)
	}
	if err := g.SetAttributes(ctx, fx.people[2], Attributes{Male: &yes, NoBeard: &no}); err != nil {
		t.Fatal(err)
	}
	if r := search(g, fx.probe[fx.people[2]]); r.Match == nil || !r.Match.Watchlist {
		t.Errorf("watchlisted person's match: %+v", r.Match)
	}
	if err := g.SetWatchlist(ctx, "nobody", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("watchlist of unknown name: %v", err)
	}

	// the first enrolled photo comes back decrypted, as a JPEG
	if jpg, err := g.Photo(ctx, fx.people[3]); err != nil || len(jpg) < 100 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		t.Errorf("photo of %s: %d bytes, %v", fx.people[3], len(jpg), err)
	}

	// remove
	if err := g.Remove(ctx, fx.people[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Photo(ctx, fx.people[3]); !errors.Is(err, ErrNotFound) {
		t.Errorf("photo of a removed person: %v", err)
	}
	if err := g.Remove(ctx, fx.people[3]); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	checkList(g, fx.people[:3])
	if r := search(g, fx.probe[fx.people[3]]); r.Match != nil {
		t.Errorf("removed person still matched: %+v", r.Match)
	}

	// reopen: the index is rebuilt from the file
	g.Close()
	if g, err = Open(ctx, opts); err != nil {
		t.Fatal(err)
	}
	checkList(g, fx.people[:3])
	if r := search(g, fx.probe[fx.people[0]]); r.Match == nil || r.Match.Name != fx.people[0] {
		t.Errorf("after reopening: %+v", r.Match)
	}
	if rep, err := g.Check(ctx); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}

	// export to a directory and a tar, import both into new galleries
	exp := filepath.Join(dir, "export")
	er, err := g.ExportDir(ctx, exp)
	if err != nil {
		t.Fatal(err)
	}
	if er.People != 3 || er.Images != 9 || er.Warning != ExportWarning {
		t.Errorf("export report %+v", er)
	}
	raw, err := os.ReadFile(filepath.Join(exp, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Warning, "biometric") || len(m.People) != 3 {
		t.Errorf("manifest: %s", raw)
	}
	st, err := os.Stat(filepath.Join(exp, filepath.FromSlash(m.People[0].Images[0].File)))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("exported photo: %v %v", st, err)
	}
	if _, err := g.ExportDir(ctx, exp); err == nil {
		t.Error("export into a non-empty directory accepted")
	}
	var tarBuf bytes.Buffer
	if _, err := g.ExportTar(ctx, &tarBuf); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		imp  func(g *Gallery) (*ImportReport, error)
	}{
		{"dir", func(g *Gallery) (*ImportReport, error) { return g.ImportDir(ctx, exp) }},
		{"tar", func(g *Gallery) (*ImportReport, error) { return g.ImportTar(ctx, bytes.NewReader(tarBuf.Bytes())) }},
	} {
		t.Run("import "+c.name, func(t *testing.T) {
			d := t.TempDir()
			// no finder: the manifest's boxes are used
			g2, err := Open(ctx, Options{Path: filepath.Join(d, "g.db"), KeyFile: newKey(t, d), Embedder: emb, Thresholds: &th})
			if err != nil {
				t.Fatal(err)
			}
			defer g2.Close()
			rep, err := c.imp(g2)
			if err != nil {
				t.Fatal(err)
			}
			if rep.People != 3 || rep.Created != 3 || rep.Images != 9 || len(rep.Photos) != 0 {
				t.Fatalf("import report %+v", rep)
			}
			checkList(g2, fx.people[:3])
			people, _ := g2.List(ctx)
			for _, p := range people {
				if p.Name == fx.people[2] {
					if !p.Watchlist || p.Attributes.Male == nil || !*p.Attributes.Male || p.Attributes.Glasses != nil ||
						p.Attributes.NoBeard == nil || *p.Attributes.NoBeard {
						t.Errorf("imported %s: watchlist %v attributes %+v", p.Name, p.Watchlist, p.Attributes)
					}
				}
			}
			r, err := g2.SearchFace(ctx, EmbedInput{Image: loadCeleba(t, fx.probe[fx.people[1]]), Box: celebaBox}, 1)
			if err != nil || r.Match == nil || r.Match.Name != fx.people[1] {
				t.Errorf("search after import: %+v %v", r, err)
			}
			// the same face at other thresholds (the daemon's SR setting)
			probe := EmbedInput{Image: loadCeleba(t, fx.probe[fx.people[1]]), Box: celebaBox}
			strict := DefaultThresholds()
			strict.Identify = 1
			if r, err := g2.SearchFaceAt(ctx, probe, 1, strict); err != nil || r.Match != nil ||
				r.Reason != face.ReasonBelowThreshold || r.Thresholds.Identify != 1 {
				t.Errorf("search at identify 1: %+v %v", r, err)
			}
			bad := DefaultThresholds()
			bad.Margin = -1
			if _, err := g2.SearchFaceAt(ctx, probe, 1, bad); err == nil || !strings.Contains(err.Error(), "margin") {
				t.Errorf("search at margin -1: %v", err)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	good := newKey(t, dir)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw := write("raw.key", bytes.Repeat([]byte{7}, 32))
	other := write("other.key", []byte(strings.Repeat("ab", 32)+"\n"))
	short := write("short.key", []byte("0123456789abcdef"))
	nothex := write("nothex.key", []byte(strings.Repeat("zz", 32)))

	if err := GenerateKey(good); err == nil {
		t.Error("GenerateKey overwrote an existing key")
	}
	if st, _ := os.Stat(good); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := LoadKey(raw); err != nil {
		t.Errorf("raw 32-byte key: %v", err)
	}

	enc := filepath.Join(dir, "enc.db")
	g, err := Open(ctx, Options{Path: enc, KeyFile: good})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	plain := filepath.Join(dir, "plain.db")
	g, err = Open(ctx, Options{Path: plain, Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if st, _ := os.Stat(enc); st.Mode().Perm() != 0o600 {
		t.Errorf("gallery file mode %v, want 0600", st.Mode().Perm())
	}

	cases := []struct {
		name string
		o    Options
		is   error
		msg  string
	}{
		{"wrong key", Options{Path: enc, KeyFile: other}, ErrWrongKey, "does not decrypt"},
		{"wrong raw key", Options{Path: enc, KeyFile: raw}, ErrWrongKey, "does not decrypt"},
		{"missing key file", Options{Path: enc, KeyFile: filepath.Join(dir, "nope.key")}, ErrKey, "no such file"},
		{"no key configured", Options{Path: enc}, ErrKey, "no key file configured"},
		{"short key", Options{Path: enc, KeyFile: short}, ErrKey, "has 16 bytes; want 32 raw bytes or 64 hexadecimal characters"},
		{"not hex", Options{Path: enc, KeyFile: nothex}, ErrKey, "not hexadecimal"},
		{"encrypted opened as plaintext", Options{Path: enc, Plaintext: true}, ErrEncryptionMode, "no key file was given"},
		{"plaintext opened with a key", Options{Path: plain, KeyFile: good}, ErrEncryptionMode, "created unencrypted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := Open(ctx, c.o)
			if err == nil {
				g.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q, want %v containing %q", err, c.is, c.msg)
			}
		})
	}
}

// TestEncryptionAtRest searches the raw database files (main file and WAL)
// for the bytes of a stored descriptor, of a stored photo, the person's name
// and the photo's source; with encryption off the same search finds them, so
// the search itself works. The name of a person enrolled and removed is not
// in the encrypted gallery's files either.
func TestEncryptionAtRest(t *testing.T) {
	emb := testEmbedder(t)
	fx := newFixture(t, 1, 2)
	ctx := context.Background()
	for _, plaintext := range []bool{false, true} {
		dir := t.TempDir()
		o := Options{Path: filepath.Join(dir, "g.db"), Embedder: emb, Finder: FixedBox(celebaBox), Plaintext: plaintext}
		if !plaintext {
			o.KeyFile = newKey(t, dir)
		}
		g, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		name := fx.people[0]
		jpg := readCeleba(t, fx.enrol[name][0])
		source := "photos/" + name + " 1.jpg"
		if _, err := g.Add(ctx, name, []Photo{{Source: source, Data: jpg}}); err != nil {
			t.Fatal(err)
		}
		// a person enrolled and removed again leaves no trace either
		const gone = "Removed Person Xavier"
		if _, err := g.Add(ctx, gone, []Photo{{Source: "b.jpg", Data: jpg}}); err != nil {
			t.Fatal(err)
		}
		if err := g.Remove(ctx, gone); err != nil {
			t.Fatal(err)
		}
		g.mu.RLock()
		var vec []float32
		for _, ix := range g.index {
			vec = ix.vecs[0]
		}
		g.mu.RUnlock()
		needles := map[string][]byte{
			"descriptor bytes": vecBytes(vec)[:32],
			"photo bytes":      jpg[len(jpg)/2 : len(jpg)/2+64],
			"name":             []byte(name),
			"photo source":     []byte(source),
		}
		removedNeedle := []byte("Removed Person Xavier")
		found := func() map[string]bool {
			f := map[string]bool{}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), "g.db") {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				for what, n := range needles {
					if bytes.Contains(b, n) {
						f[what] = true
					}
				}
				if !plaintext && bytes.Contains(b, removedNeedle) {
					t.Errorf("%s: the removed person's name", e.Name())
				}
			}
			return f
		}
		before := found() // WAL not yet checkpointed
		g.Close()         // checkpoints into the main file
		after := found()
		for what := range needles {
			if plaintext && !(before[what] || after[what]) {
				t.Errorf("plaintext gallery: %s not found in the files: the search is broken", what)
			}
			if !plaintext && (before[what] || after[what]) {
				t.Errorf("encrypted gallery: plaintext %s found in the database files", what)
			}
		}
	}
}

func TestDecide(t *testing.T) {
	th := Thresholds{Identify: 0.9, Margin: 0.02, Verify: 0.9}
	cands := func(s ...float64) []Candidate {
		var c []Candidate
		for i, v := range s {
			c = append(c, Candidate{PersonID: int64(i + 1), Name: string(rune('a' + i)), Similarity: v})
		}
		return c
	}
	cases := []struct {
		name   string
		c      []Candidate
		match  string
		reason string
	}{
		{"empty", nil, "", face.ReasonEmpty},
		{"below threshold", cands(0.89, 0.5), "", face.ReasonBelowThreshold},
		{"ambiguous", cands(0.95, 0.94), "", face.ReasonAmbiguous},
		{"clear", cands(0.95, 0.92), "a", ""},
		{"exactly at threshold and margin", cands(0.9, 0.875), "a", ""},
		{"alone", cands(0.91), "a", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &SearchResult{}
			decide(r, c.c, th)
			got := ""
			if r.Match != nil {
				got = r.Match.Name
			}
			if got != c.match || r.Reason != c.reason {
				t.Fatalf("match %q reason %q (%s), want %q %q", got, r.Reason, r.Detail, c.match, c.reason)
			}
		})
	}
	for _, bad := range []Thresholds{{Identify: 1.5}, {Margin: -0.1}, {Verify: 2}, {Identify: math.NaN()}} {
		if err := bad.Check(); err == nil {
			t.Errorf("thresholds %+v accepted", bad)
		}
		if _, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "g.db"), Plaintext: true, Thresholds: &bad}); err == nil {
			t.Errorf("Open with thresholds %+v succeeded", bad)
		}
	}
	if err := DefaultThresholds().Check(); err != nil {
		t.Error(err)
	}
}
