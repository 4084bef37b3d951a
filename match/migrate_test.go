package match

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
		e, err := emb.Embed(ctx, []EmbedInput{{Image: loadCeleba(t, img), Box: celebaBox}})
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
	if err := g.db.QueryRow(`SELECT max(version) FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion() || v != 5 {
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

// schemaV2 is what version 2 added to schemaV1, verbatim: the gallery as
// srdgd wrote it before names were sealed (names and photo sources in the
// clear).
var schemaV2 = []string{
	`ALTER TABLE people ADD COLUMN male INTEGER CHECK (male IN (0, 1))`,
	`ALTER TABLE people ADD COLUMN glasses INTEGER CHECK (glasses IN (0, 1))`,
	`ALTER TABLE people ADD COLUMN no_beard INTEGER CHECK (no_beard IN (0, 1))`,
	`ALTER TABLE images ADD COLUMN box TEXT`,
	`CREATE INDEX images_person ON images(person_id)`,
	`CREATE INDEX embeddings_model ON embeddings(model)`,
	`INSERT INTO schema_version VALUES (2, 'forced attributes, face boxes, indexes', '2026-02-01T00:00:00Z')`,
}

// v2Person is one person of a version-2 fixture.
type v2Person struct {
	id        int64
	name      string
	watchlist bool
	male      any
	photos    []string // labels of small JPEGs (tinyJPEG)
}

// writeV2Gallery builds a version-2 gallery by hand at path, sealed with
// keyFile (or plaintext when keyFile is ""), with each person's photos
// (source "<name> N.jpg", a box, a descriptor), and leaves its WAL in place
// as a crash or a running daemon would.
func writeV2Gallery(t *testing.T, path, keyFile string, people []v2Person) {
	t.Helper()
	var seal *sealer
	mode := encNone
	if keyFile != "" {
		key, err := LoadKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if seal, err = newSealer(key); err != nil {
			t.Fatal(err)
		}
		mode = encAES
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append(append([]string{}, schemaV1...), schemaV2...) {
		mustExec(t, db, s)
	}
	mustExec(t, db, `INSERT INTO meta VALUES ('encryption', ?)`, mode)
	if seal != nil {
		kc, _ := seal.Seal([]byte(keyCheckText), keyCheckAD)
		mustExec(t, db, `INSERT INTO meta VALUES ('key_check', ?)`, kc)
	}
	now := "2026-02-01T00:00:00Z"
	iid := int64(100)
	for _, p := range people {
		mustExec(t, db, `INSERT INTO people (id, name, watchlist, created, male) VALUES (?, ?, ?, ?, ?)`, p.id, p.name, p.watchlist, now, p.male)
		for k, ph := range p.photos {
			iid++
			jpg, _ := seal.Seal(tinyJPEG(t, ph), imageAD(p.id))
			vec, _ := seal.Seal(vecBytes([]float32{1, float32(k)}), embeddingAD(iid, "m"))
			mustExec(t, db, `INSERT INTO images (id, person_id, jpeg, source, created, box) VALUES (?, ?, ?, ?, ?, '1,2,3,4')`,
				iid, p.id, jpg, fmt.Sprintf("%s %d.jpg", p.name, k+1), now)
			mustExec(t, db, `INSERT INTO embeddings (image_id, model, vec, created) VALUES (?, ?, ?, ?)`, iid, "m", vec, now)
		}
	}
}

// galleryFilesHold reports which of needles are in the raw bytes of the
// gallery's files (the database, its -wal and -shm).
func galleryFilesHold(t *testing.T, path string, needles []string) []string {
	t.Helper()
	var found []string
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				found = append(found, filepath.Base(f)+": "+n)
			}
		}
	}
	return found
}

// TestMigrateV2SealsNames opens galleries written by version 2 (names and
// photo sources in the clear, two people whose names differ only in case)
// with the current code: the migration seals names and sources in place,
// keeps ids, photos, descriptors, watchlist and attributes, renames the
// later of the two clashing names, and leaves no clear name in the
// database, its WAL or its shared memory file. A wrong key and a failure
// during the migration leave the file as it was.
func TestMigrateV2SealsNames(t *testing.T) {
	ctx := context.Background()
	people := []v2Person{
		{id: 3, name: "Ada Lovelace", watchlist: true, male: 0, photos: []string{"ada 1", "ada 2"}},
		{id: 5, name: "Grace Hopper", photos: []string{"grace 1"}},
		{id: 8, name: "GRACE HOPPER", photos: []string{"grace caps 1"}},
	}
	needles := []string{"Ada Lovelace", "Grace Hopper", "GRACE HOPPER", "Lovelace", "HOPPER"}
	for _, plaintext := range []bool{false, true} {
		t.Run(map[bool]string{false: "encrypted", true: "plaintext"}[plaintext], func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "gallery.db")
			o := Options{Path: path, Plaintext: plaintext}
			if !plaintext {
				o.KeyFile = newKey(t, dir)
			}
			writeV2Gallery(t, path, o.KeyFile, people)
			if found := galleryFilesHold(t, path, needles); len(found) == 0 {
				t.Fatal("the version-2 fixture holds no clear name: the scan below would prove nothing")
			}
			if !plaintext {
				// a wrong key: refused before any migration step
				wrong := filepath.Join(dir, "wrong.key")
				if err := GenerateKey(wrong); err != nil {
					t.Fatal(err)
				}
				if _, err := Open(ctx, Options{Path: path, KeyFile: wrong}); !errors.Is(err, ErrWrongKey) {
					t.Fatalf("wrong key: %v", err)
				}
				assertV2Intact(t, path, people)
			}
			// a failure in the last step (written behind the gallery's
			// back, as a full disk would make one): nothing is applied,
			// the photos are all there (no cascade from the people rebuild)
			db, _ := sql.Open("sqlite", path)
			mustExec(t, db, `CREATE TRIGGER injected BEFORE UPDATE ON images BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
			db.Close()
			if _, err := Open(ctx, o); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("migration with a failing step: %v", err)
			}
			assertV2Intact(t, path, people)
			db, _ = sql.Open("sqlite", path)
			mustExec(t, db, `DROP TRIGGER injected`)
			db.Close()

			g, err := Open(ctx, o)
			if err != nil {
				t.Fatalf("opening the version-2 gallery: %v", err)
			}
			var v int
			if err := g.db.QueryRow(`SELECT max(version) FROM schema_version`).Scan(&v); err != nil || v != 5 {
				t.Fatalf("schema version %d (%v), want 5", v, err)
			}
			got, err := g.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			type row struct {
				id        int64
				name      string
				watchlist bool
				male      bool
				images    int
			}
			var rows []row
			for _, p := range got {
				rows = append(rows, row{p.ID, p.Name, p.Watchlist, p.Attributes.Male != nil && !*p.Attributes.Male, p.Images})
			}
			want := []row{{3, "Ada Lovelace", true, true, 2}, {8, "GRACE HOPPER (2)", false, false, 1}, {5, "Grace Hopper", false, false, 1}}
			if !slices.Equal(rows, want) {
				t.Fatalf("people after migration %+v, want %+v", rows, want)
			}
			for name, photo := range map[string]string{"ada lovelace": "ada 1", "grace hopper": "grace 1", "Grace Hopper (2)": "grace caps 1"} {
				if b, err := g.Photo(ctx, name); err != nil || !bytes.Equal(b, tinyJPEG(t, photo)) {
					t.Errorf("Photo(%q) = %q, %v; want %q", name, b, err, photo)
				}
			}
			var sources []string
			if err := g.images(ctx, "", nil, func(s storedImage) error {
				sources = append(sources, fmt.Sprintf("%d %s %v", s.id, s.source, s.box))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			wantSrc := []string{"101 Ada Lovelace 1.jpg (1,2)-(3,4)", "102 Ada Lovelace 2.jpg (1,2)-(3,4)",
				"104 GRACE HOPPER 1.jpg (1,2)-(3,4)", "103 Grace Hopper 1.jpg (1,2)-(3,4)"}
			if !slices.Equal(sources, wantSrc) {
				t.Errorf("photos after migration %q, want %q", sources, wantSrc)
			}
			var descriptors int
			if err := g.db.QueryRow(`SELECT count(*) FROM embeddings`).Scan(&descriptors); err != nil || descriptors != 4 {
				t.Errorf("%d descriptors after migration (%v), want 4", descriptors, err)
			}
			if c, err := g.Check(ctx); err != nil || !c.OK() {
				t.Fatalf("check: %+v %v", c, err)
			}
			// foreign keys are on again: removing a person removes the photos
			if err := g.Remove(ctx, "ADA LOVELACE"); err != nil {
				t.Fatal(err)
			}
			var left int
			if err := g.db.QueryRow(`SELECT count(*) FROM images WHERE person_id = 3`).Scan(&left); err != nil || left != 0 {
				t.Errorf("%d photos of the removed person left (%v): foreign keys off after the migration?", left, err)
			}
			found := galleryFilesHold(t, path, needles)
			g.Close()
			found = append(found, galleryFilesHold(t, path, needles)...)
			if plaintext && len(found) == 0 {
				t.Error("plaintext gallery: no name found in the files: the scan is broken")
			}
			if !plaintext && len(found) > 0 {
				t.Errorf("clear names in the migrated gallery's files: %q", found)
			}
		})
	}
}

// assertV2Intact checks that the file is still the version-2 gallery.
func assertV2Intact(t *testing.T, path string, people []v2Person) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v, n, images int
	if err := db.QueryRow(`SELECT (SELECT max(version) FROM schema_version), (SELECT count(*) FROM people), (SELECT count(*) FROM images)`).
		Scan(&v, &n, &images); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := db.QueryRow(`SELECT name FROM people WHERE id = ?`, people[0].id).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if v != 2 || n != len(people) || images != 4 || name != people[0].name {
		t.Fatalf("after a refused migration: version %d, %d people, %d photos, person %d %q; want the version-2 gallery unchanged",
			v, n, images, people[0].id, name)
	}
}
