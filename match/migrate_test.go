package match

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// schemaV1 is the gallery schema as version 1 of srdgd wrote it, kept
// verbatim here (not taken from the migrations list) so that the test checks
// the migration against the real old layout.
var schemaV1 = []string{
	`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)`,
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)`,
	`CREATE TABLE people (
		id INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		watchlist INTEGER NOT NULL DEFAULT 0,
		created TEXT NOT NULL)`,
	`CREATE TABLE images (
		id INTEGER PRIMARY KEY,
		person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
		jpeg BLOB NOT NULL,
		source TEXT NOT NULL,
		created TEXT NOT NULL)`,
	`CREATE TABLE embeddings (
		image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
		model TEXT NOT NULL,
		vec BLOB NOT NULL,
		created TEXT NOT NULL,
		PRIMARY KEY (image_id, model))`,
	`INSERT INTO schema_version VALUES (1, 'initial: people, images, embeddings, meta', '2026-01-01T00:00:00Z')`,
}

// TestMigrateV1 builds a version-1 gallery by hand (encrypted, two people,
// one with a descriptor of the current model and one with a descriptor of an
// older model), opens it with the current code and checks that the schema is
// migrated, the data kept, the new columns usable, and that Reembed brings the
// old descriptor up to date using the FaceFinder (v1 stored no face boxes).
func TestMigrateV1(t *testing.T) {
	emb := testEmbedder(t)
	fx := newFixture(t, 2, 1)
	dir := t.TempDir()
	ctx := context.Background()
	path := filepath.Join(dir, "v1.db")
	keyFile := newKey(t, dir)
	key, err := LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	seal, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schemaV1 {
		mustExec(t, db, s)
	}
	kc, _ := seal.Seal([]byte(keyCheckText), keyCheckAD)
	mustExec(t, db, `INSERT INTO meta VALUES ('encryption', 'aes-256-gcm'), ('key_check', ?)`, kc)
	now := "2026-01-01T00:00:00Z"
	for i, name := range fx.people {
		pid, iid := int64(10+i), int64(100+i)
		img := fx.enrol[name][0]
		e, err := emb.Embed(ctx, []Face{{Image: loadCeleba(t, img), Box: celebaBox}})
		if err != nil {
			t.Fatal(err)
		}
		model := e[0].Model
		if i == 1 {
			model = "face-api face_recognition_model@0000000000000000+00000000" // an older embedder
		}
		jpg, _ := seal.Seal(readCeleba(t, img), imageAD(pid))
		vec, _ := seal.Seal(vecBytes(e[0].Vector), embeddingAD(iid, model))
		mustExec(t, db, `INSERT INTO people (id, name, watchlist, created) VALUES (?, ?, ?, ?)`, pid, name, i == 0, now)
		mustExec(t, db, `INSERT INTO images (id, person_id, jpeg, source, created) VALUES (?, ?, ?, ?, ?)`, iid, pid, jpg, img, now)
		mustExec(t, db, `INSERT INTO embeddings (image_id, model, vec, created) VALUES (?, ?, ?, ?)`, iid, model, vec, now)
	}
	db.Close()

	g, err := Open(ctx, Options{Path: path, KeyFile: keyFile, Embedder: emb, Finder: FixedBox(celebaBox)})
	if err != nil {
		t.Fatalf("opening the v1 gallery: %v", err)
	}
	defer g.Close()
	var v int
	if err := g.db.QueryRow(`SELECT max(version) FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion() || v != 2 {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion())
	}
	people, err := g.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(people) != 2 || people[0].Name != fx.people[0] || !people[0].Watchlist || people[0].Attributes.Male != nil ||
		people[0].Searchable != 1 || people[1].Searchable != 0 || people[1].Images != 1 {
		t.Fatalf("people after migration: %+v", people)
	}
	// new columns work
	yes := true
	if err := g.SetAttributes(ctx, fx.people[1], Attributes{Glasses: &yes}); err != nil {
		t.Fatal(err)
	}
	probe := loadCeleba(t, fx.probe[fx.people[0]])
	if r, err := g.Search(ctx, probe, 2); err != nil || r.Match == nil || r.Match.Name != fx.people[0] || len(r.Candidates) != 1 {
		t.Fatalf("search after migration: %+v %v", r, err)
	}
	rep, err := g.Reembed(ctx, emb)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stale != 1 || rep.Reembedded != 1 || len(rep.Failed) != 0 {
		t.Fatalf("reembed: %+v", rep)
	}
	var models, box sql.NullString
	if err := g.db.QueryRow(`SELECT group_concat(e.model), i.box FROM images i JOIN embeddings e ON e.image_id = i.id WHERE i.id = 101`).Scan(&models, &box); err != nil {
		t.Fatal(err)
	}
	if models.String != emb.ModelID() || box.String != "29,56,149,176" {
		t.Fatalf("after reembed: models %q box %q", models.String, box.String)
	}
	if r, err := g.Search(ctx, loadCeleba(t, fx.probe[fx.people[1]]), 2); err != nil || r.Match == nil || r.Match.Name != fx.people[1] {
		t.Fatalf("search for the re-embedded person: %+v %v", r, err)
	}
	if rep, err := g.Reembed(ctx, emb); err != nil || rep.Stale != 0 {
		t.Fatalf("second reembed: %+v %v", rep, err)
	}
	if c, err := g.Check(ctx); err != nil || !c.OK() {
		t.Fatalf("check: %+v %v", c, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	path := filepath.Join(dir, "g.db")
	g, err := Open(ctx, Options{Path: path, Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, g.db, `INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01T00:00:00Z')`)
	g.Close()
	if _, err := Open(ctx, Options{Path: path, Plaintext: true}); !errors.Is(err, ErrSchema) {
		t.Fatalf("newer schema: %v", err)
	}
	other := filepath.Join(dir, "other.db")
	db, _ := sql.Open("sqlite", other)
	mustExec(t, db, `CREATE TABLE stuff (x)`)
	db.Close()
	if _, err := Open(ctx, Options{Path: other, Plaintext: true}); !errors.Is(err, ErrSchema) {
		t.Fatalf("foreign database: %v", err)
	}
}
