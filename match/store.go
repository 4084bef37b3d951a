package match

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go

	"github.com/srdgd/srdgd/internal/faceimg"
)

// Options configure Open.
type Options struct {
	// Path is the SQLite file; created (mode 0600) if missing.
	Path string
	// KeyFile holds the AES-256 key (32 raw bytes or 64 hex characters, see
	// GenerateKey). Required unless Plaintext.
	KeyFile string
	// Plaintext stores images and embeddings unencrypted. Off by default; a
	// gallery's mode is fixed when it is created.
	Plaintext bool
	// Embedder makes descriptors for Add, Import, Search and Verify; nil
	// opens the gallery for listing, removal and export only.
	Embedder FaceEmbedder
	// Finder finds the face in enrolment and search photos; nil limits Add and
	// Search to photos with a known box (Import with boxes, SearchFace).
	Finder FaceFinder
	// Thresholds for Search and Verify; nil takes DefaultThresholds().
	Thresholds *Thresholds
	// MaxImagePixels refuses larger photos before decoding them, and bounds
	// the pixels of the photos decoded at the same time; default
	// faceimg.DefaultMaxPixels (40,000,000).
	MaxImagePixels int
	// Log receives warnings (stale embeddings, loose key file permissions);
	// default discards.
	Log *slog.Logger
}

// Gallery is the enrolled people, their photos and descriptors in one SQLite
// file (WAL mode), with names, photos, photo sources and descriptors
// encrypted at rest (AES-256-GCM). Names are found by a keyed hash of their
// normalised form (nameKey), so lookups and uniqueness need no clear name on
// disk. Every enrolment of one photo is one transaction. Safe for concurrent
// use.
type Gallery struct {
	db   *sql.DB
	seal *sealer
	// nameMAC keys the name index (HMAC-SHA256); derived from the gallery
	// key, empty in a plaintext gallery
	nameMAC []byte
	path    string
	emb     FaceEmbedder
	find    FaceFinder
	th      Thresholds
	maxP    int
	log     *slog.Logger
	// decodeBudget holds maxP pixels: photos being decoded take their
	// pixel count from it (decodePhoto)
	decodeBudget *semaphore.Weighted
	// decodes counts the decodes in flight and the pixels decoded since
	// memory was last handed back (decodePhoto)
	decodes decodeCount

	mu    sync.RWMutex
	index map[int64]*indexed // person id -> descriptors for emb's model
	// ruleWarned: the scales warned about having no template map
	ruleWarned sync.Map
}

type indexed struct {
	name      string
	watchlist bool
	// offset: the person's threshold override (SetOffset)
	offset Offset
	images []int64
	vecs   [][]float32
	// lr and neg: the descriptors of sightings confirmed as and rejected
	// as this person (feedback.go)
	lr, neg [][]float32
}

// migration is one step of the schema; versions are consecutive from 1.
// sql runs first, then run (steps that need the key), in the transaction
// that applies every pending step.
type migration struct {
	version int
	name    string
	sql     []string
	run     func(ctx context.Context, tx *sql.Tx, g *Gallery) error
}

// migrations is the explicit, append-only schema history. Never edit an
// applied step: add a new one.
var migrations = []migration{
	{1, "initial: people, images, embeddings, meta", []string{
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
	}, nil},
	{2, "forced attributes, face boxes, indexes", []string{
		`ALTER TABLE people ADD COLUMN male INTEGER CHECK (male IN (0, 1))`,
		`ALTER TABLE people ADD COLUMN glasses INTEGER CHECK (glasses IN (0, 1))`,
		`ALTER TABLE people ADD COLUMN no_beard INTEGER CHECK (no_beard IN (0, 1))`,
		// the face box in the stored photo, "x0,y0,x1,y1"; NULL for photos
		// enrolled before version 2 (Reembed then asks the FaceFinder)
		`ALTER TABLE images ADD COLUMN box TEXT`,
		`CREATE INDEX images_person ON images(person_id)`,
		`CREATE INDEX embeddings_model ON embeddings(model)`,
	}, nil},
	{3, "names sealed and found by keyed hash, photo sources sealed", []string{
		// people rebuilt (SQLite cannot drop the UNIQUE of a column): name
		// holds the sealed name (the clear one in a plaintext gallery),
		// name_key its nameKey, on which lookups and uniqueness work
		`CREATE TABLE people_v3 (
			id INTEGER PRIMARY KEY,
			name BLOB NOT NULL,
			name_key BLOB NOT NULL UNIQUE,
			watchlist INTEGER NOT NULL DEFAULT 0,
			created TEXT NOT NULL,
			male INTEGER CHECK (male IN (0, 1)),
			glasses INTEGER CHECK (glasses IN (0, 1)),
			no_beard INTEGER CHECK (no_beard IN (0, 1)))`,
	}, sealNames},
	{4, "feedback templates: confirmed and rejected sightings", []string{
		// vec: the sealed descriptor of the sighting's SR face for model
		// (bound to person, kind and model); source: the sealed hit or
		// visit id the operator gave the verdict on
		`CREATE TABLE templates (
			id INTEGER PRIMARY KEY,
			person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
			kind TEXT NOT NULL CHECK (kind IN ('confirmed', 'rejected')),
			model TEXT NOT NULL,
			scale INTEGER NOT NULL CHECK (scale IN (8, 16)),
			vec BLOB NOT NULL,
			source BLOB NOT NULL,
			created TEXT NOT NULL)`,
		`CREATE INDEX templates_person ON templates(person_id, kind, model)`,
	}, nil},
	{5, "per-person threshold overrides", []string{
		// offsets added to the threshold and margin a decision naming this
		// person is held to (override.go); NULL: none
		`ALTER TABLE people ADD COLUMN threshold_offset REAL`,
		`ALTER TABLE people ADD COLUMN margin_offset REAL`,
	}, nil},
}

// SchemaVersion is the schema this package writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

const (
	encAES       = "aes-256-gcm"
	encNone      = "none"
	keyCheckText = "srdgd gallery key check v1"
	keyCheckAD   = "srdgd/meta/key_check"
	nameKeyInfo  = "srdgd gallery name index v1"
	timeLayout   = time.RFC3339Nano
)

// Open opens or creates the gallery at o.Path, migrating its schema to the
// current version and checking the key.
func Open(ctx context.Context, o Options) (*Gallery, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Path == "" {
		return nil, fmt.Errorf("gallery: no database path configured")
	}
	if strings.ContainsAny(o.Path, "?#") || strings.HasPrefix(o.Path, "file:") {
		return nil, fmt.Errorf("gallery %s: the path must not contain '?' or '#' or start with 'file:'", o.Path)
	}
	if o.MaxImagePixels == 0 {
		o.MaxImagePixels = faceimg.DefaultMaxPixels
	}
	th := DefaultThresholds()
	if o.Thresholds != nil {
		th = *o.Thresholds
	}
	if err := th.Check(); err != nil {
		return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
	}
	var seal *sealer
	var nameMAC []byte
	if !o.Plaintext {
		key, err := LoadKey(o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
		}
		if st, err := os.Stat(o.KeyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			o.Log.Warn("gallery key file is readable by group or others", "key_file", o.KeyFile, "mode", st.Mode().Perm().String())
		}
		if seal, err = newSealer(key); err != nil {
			return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
		}
		if nameMAC, err = hkdf.Key(sha256.New, key, nil, nameKeyInfo, sha256.Size); err != nil {
			return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
	}
	// create the file ourselves so that it is 0600 (SQLite would use 0644)
	if f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
	} else {
		f.Close()
	}
	// synchronous FULL: a commit is on disk when Add returns, not only in the
	// WAL page cache (enrolments are rare, their cost does not matter).
	// secure_delete: freed pages and cells are zeroed, so what a removal or
	// the name migration (version 3) replaced does not stay in the file.
	dsn := o.Path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(FULL)&_pragma=secure_delete(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
	}
	// One connection: writes are serialised in Go rather than by SQLITE_BUSY
	// retries, and reads are small (search runs on the in-memory index).
	db.SetMaxOpenConns(1)
	g := &Gallery{db: db, seal: seal, nameMAC: nameMAC, path: o.Path, emb: o.Embedder, find: o.Finder, th: th, maxP: o.MaxImagePixels, log: o.Log,
		decodeBudget: semaphore.NewWeighted(int64(o.MaxImagePixels))}
	if err := g.init(ctx, o.Plaintext); err != nil {
		db.Close()
		return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
	}
	if err := g.loadIndex(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("gallery %s: %w", o.Path, err)
	}
	return g, nil
}

// Close closes the database.
func (g *Gallery) Close() error { return g.db.Close() }

// Path is the database file.
func (g *Gallery) Path() string { return g.path }

// Thresholds in force.
func (g *Gallery) Thresholds() Thresholds { return g.th }

func (g *Gallery) version(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("reading the schema: %w (is it an SQLite file?)", err)
	}
	if n == 0 {
		var tables int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&tables); err != nil {
			return 0, err
		}
		if tables > 0 {
			return 0, fmt.Errorf("%w: the file has tables but no schema_version: not an srdgd gallery", ErrSchema)
		}
		return 0, nil
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT max(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("%w: schema_version: %w", ErrSchema, err)
	}
	return int(v.Int64), nil
}

// init applies the pending migrations and, for a new gallery, records the
// encryption mode and key check value, all in one transaction. An existing
// gallery's mode and key are checked before any migration runs, as version 3
// seals the names with the key.
func (g *Gallery) init(ctx context.Context, plaintext bool) error {
	// Pinned: the foreign_keys pragma is per connection and a no-op inside
	// a transaction. Off while migrating, as the table rebuild of version 3
	// drops the old people table, which with foreign keys on would delete
	// every photo (ON DELETE CASCADE); foreign_key_check runs before commit.
	conn, err := g.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("foreign keys off: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	cur, err := g.version(ctx, tx)
	if err != nil {
		return err
	}
	if latest := SchemaVersion(); cur > latest {
		return fmt.Errorf("%w: version %d is newer than this program's %d: upgrade srdgd", ErrSchema, cur, latest)
	}
	mode, err := g.encryptionMode(ctx, tx, cur, plaintext)
	if err != nil {
		return err
	}
	migrated, err := g.migrate(ctx, tx, cur)
	if err != nil {
		return err
	}
	if err := g.recordMode(ctx, tx, mode); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		return fmt.Errorf("foreign keys on: %w", err)
	}
	if migrated {
		// copy the migrated pages into the file and empty the WAL now, so
		// that the clear names the migration replaced (zeroed, see
		// secure_delete) are gone from the file and the WAL
		if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return fmt.Errorf("checkpoint after migration: %w", err)
		}
	}
	return nil
}

// encryptionMode is the gallery's encryption mode: the one recorded (its
// key checked), else for a new gallery AES with a key file or none when
// plaintext. A new gallery gets its schema_version table here.
func (g *Gallery) encryptionMode(ctx context.Context, tx *sql.Tx, cur int, plaintext bool) (string, error) {
	mode := ""
	if cur > 0 {
		switch err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'encryption'`).Scan(&mode); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return "", fmt.Errorf("meta: %w", err)
		default:
			if err := g.checkKey(ctx, tx, mode); err != nil {
				return "", err
			}
		}
	} else {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)`); err != nil {
			return "", fmt.Errorf("schema_version: %w", err)
		}
	}
	if mode == "" {
		mode = encAES
		if plaintext {
			mode = encNone
		}
		// before the migrations: version 3 seals with the key, which must
		// suit the mode
		if err := g.checkMode(mode); err != nil {
			return "", err
		}
	}
	return mode, nil
}

// migrate applies the migrations after version cur in tx; it refuses one
// that leaves more rows pointing to a missing parent than there were.
func (g *Gallery) migrate(ctx context.Context, tx *sql.Tx, cur int) (bool, error) {
	migrated := false
	fkBefore := 0
	if cur > 0 && cur < SchemaVersion() {
		// rows already broken stay so (Check reports them); the migration
		// must not add any
		var err error
		if fkBefore, err = fkViolations(ctx, tx); err != nil {
			return false, err
		}
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		for _, s := range m.sql {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return false, fmt.Errorf("%w: migration %d (%s): %w", ErrSchema, m.version, m.name, err)
			}
		}
		if m.run != nil {
			if err := m.run(ctx, tx, g); err != nil {
				return false, fmt.Errorf("%w: migration %d (%s): %w", ErrSchema, m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UTC().Format(timeLayout)); err != nil {
			return false, fmt.Errorf("%w: migration %d: %w", ErrSchema, m.version, err)
		}
		if cur > 0 {
			migrated = true
			g.log.Info("gallery schema migrated", "path", g.path, "version", m.version, "migration", m.name)
		}
	}
	if cur < SchemaVersion() {
		n, err := fkViolations(ctx, tx)
		if err != nil {
			return false, err
		}
		if n > fkBefore {
			return false, fmt.Errorf("%w: the migration left %d rows pointing to a missing parent (%d before): not applied", ErrSchema, n, fkBefore)
		}
	}
	return migrated, nil
}

// recordMode writes the encryption mode (and the key check value) of a
// gallery that has none recorded yet.
func (g *Gallery) recordMode(ctx context.Context, tx *sql.Tx, mode string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key = 'encryption'`).Scan(&n); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	if n == 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('encryption', ?)`, mode); err != nil {
			return err
		}
		if g.seal != nil {
			kc, err := g.seal.Seal([]byte(keyCheckText), keyCheckAD)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('key_check', ?)`, kc); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkMode refuses a key for a plaintext gallery and the other way round.
func (g *Gallery) checkMode(mode string) error {
	switch {
	case mode == encAES && g.seal == nil:
		return fmt.Errorf("%w: the gallery is encrypted (%s) and no key file was given", ErrEncryptionMode, encAES)
	case mode == encNone && g.seal != nil:
		return fmt.Errorf("%w: the gallery was created unencrypted; refusing to mix in a key (export and import into a new encrypted gallery)", ErrEncryptionMode)
	case mode != encAES && mode != encNone:
		return fmt.Errorf("%w: unknown encryption mode %q", ErrSchema, mode)
	}
	return nil
}

// checkKey checks the mode and that the key opens the key check value.
func (g *Gallery) checkKey(ctx context.Context, tx *sql.Tx, mode string) error {
	if err := g.checkMode(mode); err != nil {
		return err
	}
	if g.seal == nil {
		return nil
	}
	var kc []byte
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&kc); err != nil {
		return fmt.Errorf("%w: no key check value: %w", ErrSchema, err)
	}
	p, err := g.seal.Open(kc, keyCheckAD)
	if err != nil || string(p) != keyCheckText {
		return fmt.Errorf("%w: the key file does not decrypt this gallery's key check value", ErrWrongKey)
	}
	return nil
}

// fkViolations counts the rows that point to a missing parent; init checks
// them as foreign keys are off while migrating.
func fkViolations(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&n); err != nil {
		return 0, fmt.Errorf("foreign_key_check: %w", err)
	}
	return n, nil
}

// sealNames is migration 3: every person moves to people_v3 with the name
// sealed and its nameKey, every photo source is sealed. Two names that
// differ only in case or Unicode form were two people and now have one
// nameKey: the later one (by id) gets " (2)" (or the next free number)
// appended, and a warning names the person id.
func sealNames(ctx context.Context, tx *sql.Tx, g *Gallery) error {
	type person struct {
		id                int64
		name, created     string
		watchlist         bool
		male, glasses, nb sql.NullInt64
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, name, watchlist, created, male, glasses, no_beard FROM people ORDER BY id`)
	if err != nil {
		return err
	}
	var people []person
	for rows.Next() {
		var p person
		if err := rows.Scan(&p.id, &p.name, &p.watchlist, &p.created, &p.male, &p.glasses, &p.nb); err != nil {
			rows.Close()
			return err
		}
		people = append(people, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	taken := map[string]bool{}
	for _, p := range people {
		name := p.name
		for i := 2; taken[string(g.nameKey(name))]; i++ {
			name = fmt.Sprintf("%s (%d)", p.name, i)
		}
		if name != p.name {
			g.log.Warn("gallery migration: a person's name differs from another's only in case or Unicode form; a number was appended to it",
				"path", g.path, "person_id", p.id)
		}
		nk := g.nameKey(name)
		taken[string(nk)] = true
		sn, err := g.seal.Seal([]byte(name), nameAD(p.id))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO people_v3 (id, name, name_key, watchlist, created, male, glasses, no_beard)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.id, sn, nk, p.watchlist, p.created, p.male, p.glasses, p.nb); err != nil {
			return fmt.Errorf("person %d: %w", p.id, err)
		}
	}
	for _, q := range []string{`DROP TABLE people`, `ALTER TABLE people_v3 RENAME TO people`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	type src struct {
		id     int64
		source string
	}
	rows, err = tx.QueryContext(ctx, `SELECT id, source FROM images ORDER BY id`)
	if err != nil {
		return err
	}
	var srcs []src
	for rows.Next() {
		var s src
		if err := rows.Scan(&s.id, &s.source); err != nil {
			rows.Close()
			return err
		}
		srcs = append(srcs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range srcs {
		b, err := g.seal.Seal([]byte(s.source), sourceAD(s.id))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE images SET source = ? WHERE id = ?`, b, s.id); err != nil {
			return fmt.Errorf("image %d: %w", s.id, err)
		}
	}
	return nil
}

// normName is the form of a name that lookups and uniqueness compare:
// Unicode case folding, then NFC, so "Émile", "ÉMILE" and "émile" typed
// with a combining accent are one person.
func normName(name string) string { return norm.NFC.String(cases.Fold().String(name)) }

// nameKey is the keyed hash (HMAC-SHA256, key derived from the gallery key
// with HKDF) of a normalised name: the people table's lookup column, which
// says nothing about the name without the key. In a plaintext gallery the
// HMAC key is empty (the name is in the clear there anyway).
func (g *Gallery) nameKey(name string) []byte {
	m := hmac.New(sha256.New, g.nameMAC)
	m.Write([]byte(normName(name)))
	return m.Sum(nil)
}

func nameAD(personID int64) string {
	return "srdgd/person/" + strconv.FormatInt(personID, 10) + "/name"
}

func sourceAD(imageID int64) string {
	return "srdgd/image/" + strconv.FormatInt(imageID, 10) + "/source"
}

// openName decrypts a person's stored name.
func (g *Gallery) openName(personID int64, blob []byte) (string, error) {
	b, err := g.seal.Open(blob, nameAD(personID))
	if err != nil {
		return "", fmt.Errorf("name of person %d: %w", personID, err)
	}
	return string(b), nil
}

func imageAD(personID int64) string { return "srdgd/image/person/" + strconv.FormatInt(personID, 10) }

func embeddingAD(imageID int64, model string) string {
	return "srdgd/embedding/image/" + strconv.FormatInt(imageID, 10) + "/model/" + model
}

func vecBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesVec(b []byte) ([]float32, error) {
	if len(b)%4 != 0 || len(b) == 0 {
		return nil, fmt.Errorf("descriptor of %d bytes", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func boxString(r image.Rectangle) sql.NullString {
	if r.Empty() {
		return sql.NullString{}
	}
	return sql.NullString{Valid: true, String: fmt.Sprintf("%d,%d,%d,%d", r.Min.X, r.Min.Y, r.Max.X, r.Max.Y)}
}

func parseBox(s sql.NullString) (image.Rectangle, error) {
	if !s.Valid {
		return image.Rectangle{}, nil
	}
	var r image.Rectangle
	if _, err := fmt.Sscanf(s.String, "%d,%d,%d,%d", &r.Min.X, &r.Min.Y, &r.Max.X, &r.Max.Y); err != nil {
		return image.Rectangle{}, fmt.Errorf("face box %q: %w", s.String, err)
	}
	return r, nil
}

// loadIndex decrypts every descriptor of the current embedder's model into
// memory and warns about those of other models.
func (g *Gallery) loadIndex(ctx context.Context) error {
	idx := map[int64]*indexed{}
	if g.emb == nil {
		g.mu.Lock()
		g.index = idx
		g.mu.Unlock()
		return nil
	}
	model := g.emb.ModelID()
	rows, err := g.db.QueryContext(ctx, `
		SELECT p.id, p.name, p.watchlist, p.threshold_offset, p.margin_offset, i.id, e.vec
		FROM embeddings e JOIN images i ON i.id = e.image_id JOIN people p ON p.id = i.person_id
		WHERE e.model = ? ORDER BY p.id, i.id`, model)
	if err != nil {
		return fmt.Errorf("loading descriptors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid, iid int64
		var wl bool
		var thr, mar sql.NullFloat64
		var sname, blob []byte
		if err := rows.Scan(&pid, &sname, &wl, &thr, &mar, &iid, &blob); err != nil {
			return fmt.Errorf("loading descriptors: %w", err)
		}
		plain, err := g.seal.Open(blob, embeddingAD(iid, model))
		if err != nil {
			return fmt.Errorf("descriptor of image %d (person %d): %w", iid, pid, err)
		}
		v, err := bytesVec(plain)
		if err != nil {
			return fmt.Errorf("descriptor of image %d (person %d): %w", iid, pid, err)
		}
		e := idx[pid]
		if e == nil {
			name, err := g.openName(pid, sname)
			if err != nil {
				return err
			}
			e = &indexed{name: name, watchlist: wl, offset: offsetOf(thr, mar)}
			idx[pid] = e
		}
		e.images = append(e.images, iid)
		e.vecs = append(e.vecs, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("loading descriptors: %w", err)
	}
	rows.Close()
	var stale int
	if err := g.db.QueryRowContext(ctx, `
		SELECT count(*) FROM images i WHERE NOT EXISTS
		(SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model = ?)`, model).Scan(&stale); err != nil {
		return fmt.Errorf("counting stale descriptors: %w", err)
	}
	if stale > 0 {
		g.log.Warn("gallery photos without a descriptor of the current model: not searchable until re-embedded (srdgd gallery reembed)",
			"path", g.path, "photos", stale, "model", model)
	}
	g.mu.Lock()
	g.index = idx
	g.mu.Unlock()
	return g.loadTemplates(ctx, -1)
}

// Attributes are the operator-forced attributes of a person (nil = not
// forced: the LR predictor decides). They override what the pipeline predicts
// from the probe when a watchlisted person is searched for.
type Attributes struct {
	Male, Glasses, NoBeard *bool
}

// Person is one enrolled identity as List returns it.
type Person struct {
	ID        int64
	Name      string
	Watchlist bool
	// Offset is the person's threshold override (zero: none).
	Offset     Offset
	Attributes Attributes
	Created    time.Time
	// Images is the number of enrolled photos, Searchable those with a
	// descriptor of the current embedder's model.
	Images, Searchable int
}

func nullBool(n sql.NullInt64) *bool {
	if !n.Valid {
		return nil
	}
	b := n.Int64 != 0
	return &b
}

func toNull(b *bool) sql.NullInt64 {
	if b == nil {
		return sql.NullInt64{}
	}
	if *b {
		return sql.NullInt64{Valid: true, Int64: 1}
	}
	return sql.NullInt64{Valid: true}
}

// List returns everyone, by name (byte order of the UTF-8, then id; sorted
// here, as the database holds the names sealed).
func (g *Gallery) List(ctx context.Context) ([]Person, error) {
	model := ""
	if g.emb != nil {
		model = g.emb.ModelID()
	}
	rows, err := g.db.QueryContext(ctx, `
		SELECT p.id, p.name, p.watchlist, p.threshold_offset, p.margin_offset, p.male, p.glasses, p.no_beard, p.created,
			(SELECT count(*) FROM images i WHERE i.person_id = p.id),
			(SELECT count(*) FROM images i WHERE i.person_id = p.id AND EXISTS
				(SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model = ?))
		FROM people p`, model)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: list: %w", g.path, err)
	}
	defer rows.Close()
	var out []Person
	for rows.Next() {
		var p Person
		var m, gl, nb sql.NullInt64
		var thr, mar sql.NullFloat64
		var created string
		var name []byte
		if err := rows.Scan(&p.ID, &name, &p.Watchlist, &thr, &mar, &m, &gl, &nb, &created, &p.Images, &p.Searchable); err != nil {
			return nil, fmt.Errorf("gallery %s: list: %w", g.path, err)
		}
		if p.Name, err = g.openName(p.ID, name); err != nil {
			return nil, fmt.Errorf("gallery %s: list: %w", g.path, err)
		}
		p.Attributes = Attributes{nullBool(m), nullBool(gl), nullBool(nb)}
		p.Offset = offsetOf(thr, mar)
		p.Created, _ = time.Parse(timeLayout, created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gallery %s: list: %w", g.path, err)
	}
	slices.SortFunc(out, func(a, b Person) int { return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

func (g *Gallery) personID(ctx context.Context, name string) (int64, error) {
	var id int64
	err := g.db.QueryRowContext(ctx, `SELECT id FROM people WHERE name_key = ?`, g.nameKey(name)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("person %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("gallery %s: person %q: %w", g.path, name, err)
	}
	return id, nil
}

// Photo returns the first enrolled photo (JPEG, decrypted) of the person
// called name; an error wrapping ErrNotFound when there is no such person or
// the person has no photo.
func (g *Gallery) Photo(ctx context.Context, name string) ([]byte, error) {
	pid, err := g.personID(ctx, name)
	if err != nil {
		return nil, err
	}
	var blob []byte
	err = g.db.QueryRowContext(ctx, `SELECT jpeg FROM images WHERE person_id = ? ORDER BY id LIMIT 1`, pid).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("person %q has no photo: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("gallery %s: photo of %q: %w", g.path, name, err)
	}
	jpg, err := g.seal.Open(blob, imageAD(pid))
	if err != nil {
		return nil, fmt.Errorf("gallery %s: photo of %q: %w", g.path, name, err)
	}
	return jpg, nil
}

// Remove deletes a person with all photos and descriptors (one statement;
// the photos and descriptors go by ON DELETE CASCADE).
func (g *Gallery) Remove(ctx context.Context, name string) error {
	var id int64
	err := g.db.QueryRowContext(ctx, `DELETE FROM people WHERE name_key = ? RETURNING id`, g.nameKey(name)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("gallery %s: remove: person %q: %w", g.path, name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("gallery %s: remove %q: %w", g.path, name, err)
	}
	g.mu.Lock()
	delete(g.index, id)
	g.mu.Unlock()
	return nil
}

// SetWatchlist marks or unmarks a person as watchlisted.
func (g *Gallery) SetWatchlist(ctx context.Context, name string, on bool) error {
	var id int64
	err := g.db.QueryRowContext(ctx, `UPDATE people SET watchlist = ? WHERE name_key = ? RETURNING id`, on, g.nameKey(name)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("gallery %s: watchlist: person %q: %w", g.path, name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("gallery %s: watchlist %q: %w", g.path, name, err)
	}
	g.mu.Lock()
	if e := g.index[id]; e != nil {
		e.watchlist = on
	}
	g.mu.Unlock()
	return nil
}

// SetAttributes replaces a person's forced attributes (nil fields unforce).
func (g *Gallery) SetAttributes(ctx context.Context, name string, a Attributes) error {
	res, err := g.db.ExecContext(ctx, `UPDATE people SET male = ?, glasses = ?, no_beard = ? WHERE name_key = ?`,
		toNull(a.Male), toNull(a.Glasses), toNull(a.NoBeard), g.nameKey(name))
	if err != nil {
		return fmt.Errorf("gallery %s: attributes of %q: %w", g.path, name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("gallery %s: attributes: person %q: %w", g.path, name, ErrNotFound)
	}
	return nil
}

// enrolment is one accepted photo ready to be written.
type enrolment struct {
	source string
	jpeg   []byte
	box    image.Rectangle
	emb    Embedding
}

// enrolOne writes one photo and its descriptor, creating the person if new,
// in one transaction: after a crash either all of it is there or none. A
// name that differs from an enrolled one only in case or Unicode form adds
// to that person, who keeps the name as first enrolled.
func (g *Gallery) enrolOne(ctx context.Context, name string, e enrolment) (personID, imageID int64, err error) {
	now := time.Now().UTC().Format(timeLayout)
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	nk := g.nameKey(name)
	stored := name
	var sname []byte
	var wl bool
	var thr, mar sql.NullFloat64
	switch err := tx.QueryRowContext(ctx, `SELECT id, name, watchlist, threshold_offset, margin_offset FROM people WHERE name_key = ?`, nk).Scan(&personID, &sname, &wl, &thr, &mar); {
	case errors.Is(err, sql.ErrNoRows):
		// the id is chosen here (the transaction holds the write lock) so
		// that the sealed name can be bound to it
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM people`).Scan(&personID); err != nil {
			return 0, 0, fmt.Errorf("new person id: %w", err)
		}
		sn, err := g.seal.Seal([]byte(name), nameAD(personID))
		if err != nil {
			return 0, 0, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO people (id, name, name_key, watchlist, created) VALUES (?, ?, ?, 0, ?)`,
			personID, sn, nk, now); err != nil {
			return 0, 0, fmt.Errorf("insert person: %w", err)
		}
	case err != nil:
		return 0, 0, fmt.Errorf("find person: %w", err)
	default:
		if stored, err = g.openName(personID, sname); err != nil {
			return 0, 0, err
		}
	}
	img, err := g.seal.Seal(e.jpeg, imageAD(personID))
	if err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM images`).Scan(&imageID); err != nil {
		return 0, 0, fmt.Errorf("new image id: %w", err)
	}
	src, err := g.seal.Seal([]byte(e.source), sourceAD(imageID))
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO images (id, person_id, jpeg, source, created, box) VALUES (?, ?, ?, ?, ?, ?)`,
		imageID, personID, img, src, now, boxString(e.box)); err != nil {
		return 0, 0, fmt.Errorf("insert image: %w", err)
	}
	vec, err := g.seal.Seal(vecBytes(e.emb.Vector), embeddingAD(imageID, e.emb.Model))
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO embeddings (image_id, model, vec, created) VALUES (?, ?, ?, ?)`,
		imageID, e.emb.Model, vec, now); err != nil {
		return 0, 0, fmt.Errorf("insert descriptor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit: %w", err)
	}
	if g.emb != nil && e.emb.Model == g.emb.ModelID() {
		g.mu.Lock()
		ix := g.index[personID]
		if ix == nil {
			ix = &indexed{name: stored, watchlist: wl, offset: offsetOf(thr, mar)}
			g.index[personID] = ix
		}
		ix.images = append(ix.images, imageID)
		ix.vecs = append(ix.vecs, e.emb.Vector)
		g.mu.Unlock()
	}
	return personID, imageID, nil
}

// storedImage is one enrolled photo, decrypted.
type storedImage struct {
	id, personID int64
	person       string
	jpeg         []byte
	source       string
	created      string
	box          image.Rectangle
}

// images streams every photo (decrypted) to fn, person by person in List's
// order, each person's in id order. It reads the ids first so that fn may
// write to the database. where may use i (images) and p (people).
func (g *Gallery) images(ctx context.Context, where string, args []any, fn func(storedImage) error) error {
	rows, err := g.db.QueryContext(ctx, `SELECT i.id, p.id, p.name FROM images i JOIN people p ON p.id = i.person_id `+where, args...)
	if err != nil {
		return fmt.Errorf("gallery %s: images: %w", g.path, err)
	}
	type ref struct {
		id, personID int64
		person       string
	}
	var refs []ref
	names := map[int64]string{}
	for rows.Next() {
		var r ref
		var sname []byte
		if err := rows.Scan(&r.id, &r.personID, &sname); err != nil {
			rows.Close()
			return err
		}
		n, ok := names[r.personID]
		if !ok {
			if n, err = g.openName(r.personID, sname); err != nil {
				rows.Close()
				return fmt.Errorf("gallery %s: %w", g.path, err)
			}
			names[r.personID] = n
		}
		r.person = n
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	slices.SortFunc(refs, func(a, b ref) int {
		return cmp.Or(strings.Compare(a.person, b.person), cmp.Compare(a.personID, b.personID), cmp.Compare(a.id, b.id))
	})
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := storedImage{id: r.id, personID: r.personID, person: r.person}
		var blob, src []byte
		var box sql.NullString
		err := g.db.QueryRowContext(ctx, `SELECT jpeg, source, created, box FROM images WHERE id = ? AND person_id = ?`, r.id, r.personID).
			Scan(&blob, &src, &s.created, &box)
		if errors.Is(err, sql.ErrNoRows) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("gallery %s: image %d: %w", g.path, r.id, err)
		}
		if s.jpeg, err = g.seal.Open(blob, imageAD(s.personID)); err != nil {
			return fmt.Errorf("gallery %s: image %d of %q: %w", g.path, r.id, s.person, err)
		}
		source, err := g.seal.Open(src, sourceAD(s.id))
		if err != nil {
			return fmt.Errorf("gallery %s: image %d of %q: source: %w", g.path, r.id, s.person, err)
		}
		s.source = string(source)
		if s.box, err = parseBox(box); err != nil {
			return fmt.Errorf("gallery %s: image %d of %q: %w", g.path, r.id, s.person, err)
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// ReembedReport says what Reembed did.
type ReembedReport struct {
	Model      string
	Stale      int     // photos without a descriptor of Model before the call
	Reembedded int     // of those, now with one
	Failed     []error // per photo, for the others
}

// Reembed computes descriptors of e's model for every photo that lacks one
// (after an embedder upgrade) and deletes their descriptors of other models,
// one transaction per photo. Photos enrolled before schema version 2 have no
// stored face box; the gallery's FaceFinder finds it again. If e is not the
// gallery's embedder, the in-memory index is not affected.
func (g *Gallery) Reembed(ctx context.Context, e FaceEmbedder) (*ReembedReport, error) {
	if e == nil {
		return nil, fmt.Errorf("gallery %s: reembed: %w", g.path, ErrNoEmbedder)
	}
	model := e.ModelID()
	rep := &ReembedReport{Model: model}
	where := `WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model = ?)`
	err := g.images(ctx, where, []any{model}, func(s storedImage) error {
		rep.Stale++
		fail := func(err error) error {
			rep.Failed = append(rep.Failed, fmt.Errorf("image %d (%s) of %q: %w", s.id, s.source, s.person, err))
			return nil
		}
		d, err := g.decodePhoto(ctx, s.jpeg)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fail(err)
		}
		// the stored box is in the stored photo's pixels, which photos
		// enrolled before PhotoSide may have more of than d.img
		box := d.fromFile(s.box)
		if s.box.Empty() {
			if g.find == nil {
				return fail(fmt.Errorf("no stored face box and %w", ErrNoFinder))
			}
			if box, err = oneFace(ctx, g.find, d.img); err != nil {
				return fail(err)
			}
		}
		embs, err := embedTemplates(ctx, e, []EmbedInput{{Image: d.img, Box: box}})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fail(err)
		}
		if err := g.replaceEmbedding(ctx, s.id, d.toFile(box), embs[0]); err != nil {
			return err
		}
		rep.Reembedded++
		return nil
	})
	if err != nil {
		return rep, err
	}
	if g.emb != nil && g.emb.ModelID() == model {
		if err := g.loadIndex(ctx); err != nil {
			return rep, fmt.Errorf("gallery %s: %w", g.path, err)
		}
	}
	return rep, nil
}

func (g *Gallery) replaceEmbedding(ctx context.Context, imageID int64, box image.Rectangle, e Embedding) error {
	vec, err := g.seal.Seal(vecBytes(e.Vector), embeddingAD(imageID, e.Model))
	if err != nil {
		return err
	}
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("gallery %s: %w", g.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM embeddings WHERE image_id = ?`, imageID); err != nil {
		return fmt.Errorf("gallery %s: image %d: %w", g.path, imageID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO embeddings (image_id, model, vec, created) VALUES (?, ?, ?, ?)`,
		imageID, e.Model, vec, time.Now().UTC().Format(timeLayout)); err != nil {
		return fmt.Errorf("gallery %s: image %d: %w", g.path, imageID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE images SET box = ? WHERE id = ? AND box IS NULL`, boxString(box), imageID); err != nil {
		return fmt.Errorf("gallery %s: image %d: %w", g.path, imageID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("gallery %s: image %d: commit: %w", g.path, imageID, err)
	}
	return nil
}

// CheckReport is what Check found; OK when Problems is empty.
type CheckReport struct {
	People, Images, Embeddings int
	Problems                   []string
}

// OK says whether the gallery passed every check.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// Check verifies the file (PRAGMA integrity_check and foreign_key_check) and
// the gallery's own invariants: every person has at least one photo, every
// photo at least one descriptor, and every photo and descriptor decrypts with
// the key and parses.
func (g *Gallery) Check(ctx context.Context) (*CheckReport, error) {
	rep := &CheckReport{}
	if err := g.checkSQLite(ctx, rep); err != nil {
		return nil, err
	}
	counts := []struct {
		q    string
		what string
	}{
		{`SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.person_id = p.id)`, "people without photos"},
		{`SELECT count(*) FROM images i WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id)`, "photos without descriptors"},
	}
	for _, c := range counts {
		var n int
		if err := g.db.QueryRowContext(ctx, c.q).Scan(&n); err != nil {
			return nil, fmt.Errorf("gallery %s: check: %w", g.path, err)
		}
		if n > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%d %s", n, c.what))
		}
	}
	if err := g.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM images), (SELECT count(*) FROM embeddings)`).
		Scan(&rep.People, &rep.Images, &rep.Embeddings); err != nil {
		return nil, fmt.Errorf("gallery %s: check: %w", g.path, err)
	}
	if err := g.checkNames(ctx, rep); err != nil {
		return nil, err
	}
	err := g.images(ctx, "", nil, func(s storedImage) error {
		if _, err := g.decodePhoto(ctx, s.jpeg); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("image %d of %q: %v", s.id, s.person, err))
		}
		return nil
	})
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	return rep, g.checkDescriptors(ctx, rep)
}

// checkSQLite adds what SQLite's integrity and foreign key checks report.
func (g *Gallery) checkSQLite(ctx context.Context, rep *CheckReport) error {
	rows, err := g.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("gallery %s: integrity_check: %w", g.path, err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		if s != "ok" {
			rep.Problems = append(rep.Problems, "integrity_check: "+s)
		}
	}
	rows.Close()
	rows, err = g.db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("gallery %s: foreign_key_check: %w", g.path, err)
	}
	for rows.Next() {
		var table, parent string
		var rowid, fkid sql.NullInt64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			rows.Close()
			return err
		}
		rep.Problems = append(rep.Problems, fmt.Sprintf("foreign key: %s row %d points to a missing %s", table, rowid.Int64, parent))
	}
	rows.Close()
	return nil
}

// checkNames adds every person whose name does not decrypt or whose name
// key does not match it.
func (g *Gallery) checkNames(ctx context.Context, rep *CheckReport) error {
	prows, err := g.db.QueryContext(ctx, `SELECT id, name, name_key FROM people ORDER BY id`)
	if err != nil {
		return fmt.Errorf("gallery %s: check: %w", g.path, err)
	}
	for prows.Next() {
		var id int64
		var sname, nk []byte
		if err := prows.Scan(&id, &sname, &nk); err != nil {
			prows.Close()
			return err
		}
		name, err := g.openName(id, sname)
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, err.Error())
		case !hmac.Equal(nk, g.nameKey(name)):
			rep.Problems = append(rep.Problems, fmt.Sprintf("person %d: the name key does not match the name (not found by name)", id))
		}
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return fmt.Errorf("gallery %s: check: %w", g.path, err)
	}
	return nil
}

// checkDescriptors adds every descriptor that does not decrypt or parse.
func (g *Gallery) checkDescriptors(ctx context.Context, rep *CheckReport) error {
	erows, err := g.db.QueryContext(ctx, `SELECT image_id, model, vec FROM embeddings`)
	if err != nil {
		return fmt.Errorf("gallery %s: check: %w", g.path, err)
	}
	defer erows.Close()
	for erows.Next() {
		var iid int64
		var model string
		var blob []byte
		if err := erows.Scan(&iid, &model, &blob); err != nil {
			return err
		}
		p, err := g.seal.Open(blob, embeddingAD(iid, model))
		if err == nil {
			_, err = bytesVec(p)
		}
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("descriptor of image %d (%s): %v", iid, model, err))
		}
	}
	return erows.Err()
}
