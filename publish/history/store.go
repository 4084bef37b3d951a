// Package history keeps every hit (LR probe, SR face, attributes, match and
// scores) and every visit (a track's fused identity decision, with its shots
// as references to the stored hits) in a SQLite store with the gallery's
// at-rest encryption, deletes hits and visits older than the retention
// period, and keeps an append-only, hash-chained audit log of gallery
// changes and of every access to hits and visits.
package history

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/seal"
)

// ErrNotFound reports a hit id that is not in the store.
var ErrNotFound = errors.New("hit not found")

// ErrKey reports a key that does not open this store.
var ErrKey = errors.New("history key")

// Options configure Open.
type Options struct {
	// Path of the SQLite file (created 0600 with its folder).
	Path string
	// Key encrypts hit records and images (AES-256-GCM, 32 bytes); nil
	// stores them in plaintext. A store created with a key refuses to open
	// without it and the other way round.
	Key []byte
	// Retention: hits and visits older than this are deleted (a visit counts
	// from when it was last seen); 0 keeps them forever.
	Retention time.Duration
	// MinFreeBytes: below this much free disk the oldest hits are deleted
	// to make room, and a hit is dropped (counted) when none are left.
	// 0 disables the check.
	MinFreeBytes uint64
	// SweepEvery is how often Run deletes expired hits. Default: the
	// smaller of Retention/10 and 1h (at least 1s).
	SweepEvery time.Duration
	Logger     *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// FreeBytes reports free space on the store's filesystem (tests);
	// default statfs.
	FreeBytes func(path string) (uint64, error)
}

// Store is the hit history. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	seal *seal.Sealer
	key  []byte
	// auditMAC keys the audit targets' tags (targetTag)
	auditMAC []byte
	o        Options
	log      *slog.Logger
	mu       sync.Mutex // serialises audit appends (hash chain)
	drops    atomic.Uint64
	saved    atomic.Uint64
	visits   atomic.Uint64
}

const (
	keyCheckText = "srdgd history key check v1"
	keyCheckAD   = "srdgd/history/key_check"
)

var schema = []string{
	`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS hits (
		id TEXT PRIMARY KEY,
		time_ms INTEGER NOT NULL,
		camera TEXT NOT NULL,
		known INTEGER NOT NULL,
		person TEXT NOT NULL,
		record BLOB NOT NULL,
		lr BLOB, sr BLOB, preview BLOB)`,
	`CREATE INDEX IF NOT EXISTS hits_time ON hits(time_ms)`,
	`CREATE INDEX IF NOT EXISTS hits_camera ON hits(camera, id)`,
	`CREATE INDEX IF NOT EXISTS hits_person ON hits(person, id)`,
	// hit_people: per hit, the tag of every name it mentions (the match and
	// each top-k candidate), lower-cased, for the person filter (as
	// visit_people for visits); a hit's rows go with it
	`CREATE TABLE IF NOT EXISTS hit_people (
		hit_id TEXT NOT NULL,
		person TEXT NOT NULL,
		PRIMARY KEY (person, hit_id))`,
	`CREATE INDEX IF NOT EXISTS hit_people_hit ON hit_people(hit_id)`,
	`CREATE TRIGGER IF NOT EXISTS hit_people_gone AFTER DELETE ON hits
		BEGIN DELETE FROM hit_people WHERE hit_id = OLD.id; END`,
	// sealed: target and detail sealed in an encrypted store (Audit); a
	// column added to stores made before, see init
	`CREATE TABLE IF NOT EXISTS audit (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		time_ms INTEGER NOT NULL,
		actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
		detail TEXT NOT NULL, remote TEXT NOT NULL,
		prev TEXT NOT NULL, hash TEXT NOT NULL, sealed BLOB)`,
	auditNoUpdate,
	`CREATE INDEX IF NOT EXISTS audit_target ON audit(target, seq)`,
	`CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
}

const auditNoUpdate = `CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`

// Open opens or creates the store. In an encrypted store, audit entries
// written by earlier versions with their targets in the clear are re-sealed
// (resealAudit); a log that does not verify is left as it is, with a
// warning.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("history: no database path configured")
	}
	if strings.ContainsAny(o.Path, "?#") || strings.HasPrefix(o.Path, "file:") {
		return nil, fmt.Errorf("history %s: the path must not contain '?' or '#' or start with 'file:'", o.Path)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FreeBytes == nil {
		o.FreeBytes = freeBytes
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Hour
		if o.Retention > 0 && o.Retention/10 < o.SweepEvery {
			o.SweepEvery = max(o.Retention/10, time.Second)
		}
	}
	s := &Store{o: o, log: o.Logger}
	if o.Key != nil {
		sl, err := seal.New(o.Key)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w: %w", o.Path, ErrKey, err)
		}
		mac, err := auditMAC(o.Key)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w: %w", o.Path, ErrKey, err)
		}
		s.seal, s.key, s.auditMAC = sl, o.Key, mac
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("history %s: %w", o.Path, err)
	}
	f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", o.Path, err)
	}
	f.Close()
	// synchronous NORMAL in WAL mode: a power cut may lose the last hits
	// (they also went to MQTT, whose spool is the never-lost channel), but the
	// file stays consistent.
	dsn := o.Path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", o.Path, err)
	}
	db.SetMaxOpenConns(1)
	s.db = db
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history %s: %w", o.Path, err)
	}
	if err := s.backfillHitPeople(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history %s: person filter: %w", o.Path, err)
	}
	if n, err := s.resealAudit(ctx); err != nil {
		s.log.Warn("history: audit entries with clear targets (names) not re-sealed", "path", o.Path, "err", err)
	} else if n > 0 {
		s.log.Info("history: audit entries written with clear targets re-sealed", "path", o.Path, "entries", n)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	for _, q := range append(schema[:len(schema):len(schema)], visitSchema...) {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	var sealedCol int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'sealed'`).Scan(&sealedCol); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if sealedCol == 0 {
		if _, err := s.db.ExecContext(ctx, `ALTER TABLE audit ADD COLUMN sealed BLOB`); err != nil {
			return fmt.Errorf("schema: audit.sealed: %w", err)
		}
	}
	var kc []byte
	err := s.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k='key_check'`).Scan(&kc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		v := []byte("none")
		if s.seal != nil {
			if v, err = s.seal.Seal([]byte(keyCheckText), keyCheckAD); err != nil {
				return err
			}
		}
		_, err = s.db.ExecContext(ctx, `INSERT INTO meta(k, v) VALUES('key_check', ?)`, v)
		return err
	case err != nil:
		return err
	}
	plain := string(kc) == "none"
	switch {
	case plain && s.seal != nil:
		return fmt.Errorf("%w: the store was created without encryption but a key is configured", ErrKey)
	case !plain && s.seal == nil:
		return fmt.Errorf("%w: the store is encrypted and no key is configured", ErrKey)
	case !plain:
		if p, err := s.seal.Open(kc, keyCheckAD); err != nil || string(p) != keyCheckText {
			return fmt.Errorf("%w: the configured key does not open this store (wrong key file?)", ErrKey)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// personTag is what the person column holds: the name itself in a
// plaintext store, a keyed hash of it in an encrypted one (so a stolen file
// does not list who was seen, and the API can still filter by person).
func (s *Store) personTag(name string) string {
	if name == "" {
		return ""
	}
	if s.key == nil {
		return name
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("srdgd/history/person/" + name))
	return hex.EncodeToString(m.Sum(nil))
}

func hitAD(id, field string) string { return "srdgd/history/hit/" + id + "/" + field }

func (s *Store) sealOpt(b []byte, id, field string) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	return s.seal.Seal(b, hitAD(id, field))
}

// Stats counts stored hits, stored visit events and dropped records (hits
// or visit events) since Open.
type Stats struct {
	Saved, Dropped uint64
	Visits         uint64
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{Saved: s.saved.Load(), Dropped: s.drops.Load(), Visits: s.visits.Load()}
}

// Publish stores a hit; it implements publish.Sink.
func (s *Store) Publish(ctx context.Context, h *face.Hit) error {
	if h.ID == "" {
		return errors.New("history: hit without an id")
	}
	if err := s.makeRoom(ctx); err != nil {
		s.drops.Add(1)
		return err
	}
	rec, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("history: hit %s: %w", h.ID, err)
	}
	if rec, err = s.sealOpt(rec, h.ID, "record"); err != nil {
		return err
	}
	lr, err := s.sealOpt(h.LRPNG, h.ID, "lr")
	if err != nil {
		return err
	}
	sr, err := s.sealOpt(h.SRJPEG, h.ID, "sr")
	if err != nil {
		return err
	}
	pv, err := s.sealOpt(h.PreviewJPEG, h.ID, "preview")
	if err != nil {
		return err
	}
	known := 0
	person := ""
	if h.Match.Known {
		known, person = 1, s.personTag(h.Match.Name)
	}
	t := h.Time
	if t.IsZero() {
		t = s.o.Now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.drops.Add(1)
		return fmt.Errorf("history: store hit %s: %w", h.ID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	_, err = tx.ExecContext(ctx, `INSERT INTO hits(id, time_ms, camera, known, person, record, lr, sr, preview)
		VALUES(?,?,?,?,?,?,?,?,?)`, h.ID, t.UnixMilli(), h.Camera, known, person, rec, lr, sr, pv)
	if err == nil {
		err = s.tagHitPeople(ctx, tx, h)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		s.drops.Add(1)
		return fmt.Errorf("history: store hit %s: %w", h.ID, err)
	}
	s.saved.Add(1)
	return nil
}

// hitPersonTag is the hit_people value for a name: lower-cased, then, in
// an encrypted store, a keyed hash.
func (s *Store) hitPersonTag(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if s.key == nil {
		return name
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("srdgd/history/hit-person/" + name))
	return hex.EncodeToString(m.Sum(nil))
}

// tagHitPeople writes a hit's hit_people rows: its match and its top-k.
func (s *Store) tagHitPeople(ctx context.Context, tx *sql.Tx, h *face.Hit) error {
	names := make([]string, 0, 1+len(h.Match.TopK))
	if h.Match.Known {
		names = append(names, h.Match.Name)
	}
	for _, c := range h.Match.TopK {
		names = append(names, c.Name)
	}
	for _, n := range names {
		if strings.TrimSpace(n) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO hit_people(hit_id, person) VALUES(?, ?)`, h.ID, s.hitPersonTag(n)); err != nil {
			return err
		}
	}
	return nil
}

// backfillHitPeople tags the hits of a store made before hit_people existed
// (once: the meta row hit_people records that it ran).
func (s *Store) backfillHitPeople(ctx context.Context) error {
	var done int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE k = 'hit_people'`).Scan(&done); err != nil || done > 0 {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, record FROM hits`)
	if err != nil {
		return err
	}
	var hits []*face.Hit
	for rows.Next() {
		var id string
		var rec []byte
		if err := rows.Scan(&id, &rec); err != nil {
			rows.Close()
			return err
		}
		h, err := s.decode(id, rec)
		if err != nil {
			rows.Close()
			return fmt.Errorf("tag hit %s for the person filter: %w", id, err)
		}
		hits = append(hits, &face.Hit{ID: h.ID, Match: face.Match{Known: h.Match.Known, Name: h.Match.Name, TopK: h.Match.TopK}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, h := range hits {
		if err := s.tagHitPeople(ctx, tx, h); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(k, v) VALUES('hit_people', 'v1')`); err != nil {
		return err
	}
	return tx.Commit()
}

// makeRoom deletes the oldest hits while free disk is below MinFreeBytes.
func (s *Store) makeRoom(ctx context.Context) error {
	if s.o.MinFreeBytes == 0 {
		return nil
	}
	for range 64 {
		free, err := s.o.FreeBytes(filepath.Dir(s.o.Path))
		if err != nil || free >= s.o.MinFreeBytes {
			return nil // cannot tell: store anyway
		}
		res, err := s.db.ExecContext(ctx, `DELETE FROM hits WHERE id IN (SELECT id FROM hits ORDER BY time_ms LIMIT 100)`)
		if err != nil {
			return fmt.Errorf("history: make room: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("history: %d bytes free under %s, below storage.min_free_bytes %d, and no hits left to delete: hit dropped",
				free, filepath.Dir(s.o.Path), s.o.MinFreeBytes)
		}
		s.log.Warn("disk nearly full: deleted the oldest hits", "free_bytes", free, "min_free_bytes", s.o.MinFreeBytes)
	}
	return nil
}

// Query selects hits for List; zero fields do not filter.
type Query struct {
	Camera string
	// Person selects hits whose match or any top-k candidate has this
	// name, compared case-insensitively.
	Person string
	Known  *bool
	// Before is a hit id: only older hits (pagination).
	Before string
	Since  time.Time
	// Limit defaults to 50 and is capped at 1000.
	Limit int
}

// List returns hits, newest first, without images.
func (s *Store) List(ctx context.Context, q Query) ([]*face.Hit, error) {
	var where []string
	var args []any
	if q.Camera != "" {
		where, args = append(where, "camera = ?"), append(args, q.Camera)
	}
	if q.Person != "" {
		where, args = append(where, "id IN (SELECT hit_id FROM hit_people WHERE person = ?)"), append(args, s.hitPersonTag(q.Person))
	}
	if q.Known != nil {
		k := 0
		if *q.Known {
			k = 1
		}
		where, args = append(where, "known = ?"), append(args, k)
	}
	if q.Before != "" {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "time_ms >= ?"), append(args, q.Since.UnixMilli())
	}
	return listRecords(ctx, s.db, "hits", where, args, q.Limit, s.decode)
}

// listRecords runs one page of a list query over a table of sealed records
// (id, record), newest first: at most limit (default 50, at most 1000).
func listRecords[T any](ctx context.Context, db *sql.DB, table string, where []string, args []any, limit int,
	decode func(id string, rec []byte) (T, error)) ([]T, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	sqlq := "SELECT id, record FROM " + table
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY id DESC LIMIT ?"
	rows, err := db.QueryContext(ctx, sqlq, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("history: list %s: %w", table, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var id string
		var rec []byte
		if err := rows.Scan(&id, &rec); err != nil {
			return nil, err
		}
		v, err := decode(id, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) decode(id string, rec []byte) (*face.Hit, error) {
	p, err := s.seal.Open(rec, hitAD(id, "record"))
	if err != nil {
		return nil, fmt.Errorf("history: hit %s: %w", id, err)
	}
	var h face.Hit
	if err := json.Unmarshal(p, &h); err != nil {
		return nil, fmt.Errorf("history: hit %s: record: %w", id, err)
	}
	return &h, nil
}

// Get returns one hit with its images.
func (s *Store) Get(ctx context.Context, id string) (*face.Hit, error) {
	var rec, lr, sr, pv []byte
	err := s.db.QueryRowContext(ctx, `SELECT record, lr, sr, preview FROM hits WHERE id = ?`, id).Scan(&rec, &lr, &sr, &pv)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("history: hit %s: %w", id, err)
	}
	h, err := s.decode(id, rec)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		blob []byte
		name string
		dst  *[]byte
	}{{lr, "lr", &h.LRPNG}, {sr, "sr", &h.SRJPEG}, {pv, "preview", &h.PreviewJPEG}} {
		if f.blob == nil {
			continue
		}
		if *f.dst, err = s.seal.Open(f.blob, hitAD(id, f.name)); err != nil {
			return nil, fmt.Errorf("history: hit %s %s image: %w", id, f.name, err)
		}
	}
	return h, nil
}

// Count returns the number of stored hits.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM hits`).Scan(&n)
	return n, err
}

// Sweep deletes hits and visits older than the retention period (a visit
// counts from the last time it was seen) and returns how many records went.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	if s.o.Retention <= 0 {
		return 0, nil
	}
	cut := s.o.Now().Add(-s.o.Retention).UnixMilli()
	res, err := s.db.ExecContext(ctx, `DELETE FROM hits WHERE time_ms < ?`, cut)
	if err != nil {
		return 0, fmt.Errorf("history: retention sweep: %w", err)
	}
	n, _ := res.RowsAffected()
	nv, err := s.sweepVisits(ctx, cut)
	if err != nil {
		return n, fmt.Errorf("history: retention sweep of visits: %w", err)
	}
	return n + nv, nil
}

// Run deletes expired hits and visits every SweepEvery until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.SweepEvery)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("history retention sweep failed", "err", err)
		} else if n > 0 {
			s.log.Info("history: deleted expired hits and visits", "count", n, "retention", s.o.Retention.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
