package match

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// benchGallery is an encrypted gallery of n people with one small photo
// each, written through the storage path (enrolOne), as the name lookup
// and List do not decode photos. The same file builds against the tree
// before names were sealed (bench/names/run.sh runs both).
func benchGallery(b *testing.B, n int) (*Gallery, []string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	key := filepath.Join(dir, "gallery.key")
	if err := GenerateKey(key); err != nil {
		b.Fatal(err)
	}
	g, err := Open(ctx, Options{Path: filepath.Join(dir, "g.db"), KeyFile: key})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Person %04d Example", (i*7919)%n) // not enrolled in name order
		if _, _, err := g.enrolOne(ctx, names[i], enrolment{source: names[i] + ".jpg", jpeg: []byte("photo"),
			emb: Embedding{Vector: []float32{1, 0}, Model: "m"}}); err != nil {
			b.Fatal(err)
		}
	}
	return g, names
}

// BenchmarkNameLookup finds a person's id by name among 1,000 (what
// Photo, Remove, SetWatchlist and Verify start with).
func BenchmarkNameLookup(b *testing.B) {
	g, names := benchGallery(b, 1000)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := g.personID(ctx, names[i%len(names)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkList lists 1,000 people by name.
func BenchmarkList(b *testing.B) {
	g, _ := benchGallery(b, 1000)
	ctx := context.Background()
	for b.Loop() {
		p, err := g.List(ctx)
		if err != nil || len(p) != 1000 {
			b.Fatal(len(p), err)
		}
	}
}
