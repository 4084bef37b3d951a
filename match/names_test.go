package match

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"path/filepath"
	"slices"
	"testing"
)

// TestNamesFoundByKey enrols through the storage path (enrolOne; the photo
// bytes are not decoded there) and checks that names are found whatever
// their case or Unicode form, that a second spelling adds to the first
// person, that List sorts by name after decrypting, and that what is not
// the same name is not found, in an encrypted and a plaintext gallery.
func TestNamesFoundByKey(t *testing.T) {
	ctx := context.Background()
	const (
		composed   = "\u00c9mile Zola"  // Émile Zola, one code point for É
		decomposed = "e\u0301mile zola" // émile zola, e + combining acute
	)
	for _, plaintext := range []bool{false, true} {
		t.Run(map[bool]string{false: "encrypted", true: "plaintext"}[plaintext], func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Path: filepath.Join(dir, "g.db"), Plaintext: plaintext}
			if !plaintext {
				o.KeyFile = newKey(t, dir)
			}
			g, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			enrol := func(name, photo string) int64 {
				t.Helper()
				pid, _, err := g.enrolOne(ctx, name, enrolment{source: name + ".jpg", jpeg: tinyJPEG(t, photo),
					emb: Embedding{Vector: []float32{1, 0}, Model: "m"}})
				if err != nil {
					t.Fatal(err)
				}
				return pid
			}
			pz := enrol(composed, "zola 1")
			if pid := enrol(decomposed, "zola 2"); pid != pz {
				t.Fatalf("%q enrolled as person %d, %q as %d: want one person", composed, pz, decomposed, pid)
			}
			enrol("bob", "bob 1")
			enrol("Alice", "alice 1")
			people, err := g.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range people {
				names = append(names, p.Name)
			}
			if want := []string{"Alice", "bob", composed}; !slices.Equal(names, want) || people[2].Images != 2 {
				t.Fatalf("List: %q (%+v), want %q with 2 photos of %q", names, people, want, composed)
			}
			cases := []struct {
				lookup string
				photo  string // first photo; "" = not found
			}{
				{composed, "zola 1"},
				{decomposed, "zola 1"},
				{"\u00c9MILE ZOLA", "zola 1"},
				{"ALICE", "alice 1"},
				{"Emile Zola", ""}, // no accent: another name
				{"Alice ", ""},
				{"Bob Smith", ""},
			}
			for _, c := range cases {
				got, err := g.Photo(ctx, c.lookup)
				switch {
				case c.photo == "" && !errors.Is(err, ErrNotFound):
					t.Errorf("Photo(%q) = %q, %v; want ErrNotFound", c.lookup, got, err)
				case c.photo != "" && (err != nil || !bytes.Equal(got, tinyJPEG(t, c.photo))):
					t.Errorf("Photo(%q) = %q, %v; want %q", c.lookup, got, err, c.photo)
				}
			}
			if err := g.SetWatchlist(ctx, "ÉMILE zola", true); err != nil {
				t.Fatal(err)
			}
			if err := g.SetWatchlist(ctx, "Emile Zola", true); !errors.Is(err, ErrNotFound) {
				t.Fatalf("watchlist of an unknown name: %v", err)
			}
			if err := g.Remove(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			if err := g.Remove(ctx, "alice"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second remove: %v", err)
			}
			people, _ = g.List(ctx)
			if len(people) != 2 || people[1].Name != composed || !people[1].Watchlist {
				t.Fatalf("after remove: %+v", people)
			}
			if c, err := g.Check(ctx); err != nil || !c.OK() {
				t.Fatalf("check: %+v %v", c, err)
			}
		})
	}
}

// TestCheckFindsSealedNameProblems: a name sealed for another person's row
// does not open, and a name key that is not the name's is found.
func TestCheckFindsSealedNameProblems(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g, err := Open(ctx, Options{Path: filepath.Join(dir, "g.db"), KeyFile: newKey(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	now := "2026-01-01T00:00:00Z"
	moved, _ := g.seal.Seal([]byte("moved"), nameAD(9))
	right, _ := g.seal.Seal([]byte("right"), nameAD(2))
	mustExec(t, g.db, `INSERT INTO people (id, name, name_key, created) VALUES (1, ?, ?, ?)`, moved, g.nameKey("moved"), now)
	mustExec(t, g.db, `INSERT INTO people (id, name, name_key, created) VALUES (2, ?, ?, ?)`, right, g.nameKey("wrong"), now)
	rep, err := g.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range rep.Problems {
		if bytes.Contains([]byte(p), []byte("name")) {
			got = append(got, p)
		}
	}
	want := []string{"name of person 1: " + errDecrypt.Error(), "person 2: the name key does not match the name (not found by name)"}
	if !slices.Equal(got, want) {
		t.Fatalf("name problems %q, want %q (all: %q)", got, want, rep.Problems)
	}
}

// tinyJPEG is a 4x4 JPEG whose comment is label, so that photos differ and
// Check finds them readable.
func tinyJPEG(t *testing.T, label string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4)), nil); err != nil {
		t.Fatal(err)
	}
	// a COM segment after SOI
	com := append([]byte{0xff, 0xfe, 0, byte(len(label) + 2)}, label...)
	return append(append(append([]byte{}, b.Bytes()[:2]...), com...), b.Bytes()[2:]...)
}
