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
	"strings"
	"time"

	"github.com/srdgd/srdgd/face"
)

// ErrVisitNotFound reports a visit id that is not in the store.
var ErrVisitNotFound = errors.New("visit not found")

// visitSchema is applied by Open after the hits' schema. A visit's shots are
// its record's ShotRefs: hit ids of hits stored by Publish, so a visit adds
// no images of its own. visit_people lists, per visit, the tag of every name
// it mentions (the decision and each top-k candidate), lower-cased, so that
// the person filter also finds visits where someone was only a candidate.
var visitSchema = []string{
	`CREATE TABLE IF NOT EXISTS visits (
		id TEXT PRIMARY KEY,
		start_ms INTEGER NOT NULL,
		last_ms INTEGER NOT NULL,
		camera TEXT NOT NULL,
		known INTEGER NOT NULL,
		rev INTEGER NOT NULL,
		record BLOB NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS visits_last ON visits(last_ms)`,
	`CREATE INDEX IF NOT EXISTS visits_camera ON visits(camera, id)`,
	`CREATE TABLE IF NOT EXISTS visit_people (
		visit_id TEXT NOT NULL,
		person TEXT NOT NULL,
		PRIMARY KEY (person, visit_id))`,
	`CREATE INDEX IF NOT EXISTS visit_people_visit ON visit_people(visit_id)`,
}

func visitAD(id string) string { return "srdgd/history/visit/" + id + "/record" }

// visitPersonTag is the visit_people value for a name: lower-cased (the
// filter is case-insensitive), then, in an encrypted store, a keyed hash.
func (s *Store) visitPersonTag(name string) string {
	name = strings.ToLower(name)
	if s.key == nil {
		return name
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("srdgd/history/visit-person/" + name))
	return hex.EncodeToString(m.Sum(nil))
}

// visitLast is the latest time a visit is known for: retention counts from
// it, so a long visit is not deleted while it is still going on.
func visitLast(v *face.Visit) time.Time {
	t := v.Start
	for _, c := range []time.Time{v.LastSeen, v.End} {
		if c.After(t) {
			t = c
		}
	}
	return t
}

// PublishVisit stores a visit event: the first event of an id inserts it,
// later ones replace it (the same id, a Rev not lower than the stored one;
// an older event arriving late, or a replay, changes nothing).
func (s *Store) PublishVisit(ctx context.Context, v *face.Visit) error {
	if v == nil || v.ID == "" {
		return errors.New("history: visit without an id")
	}
	if v.Start.IsZero() {
		return fmt.Errorf("history: visit %s without a start time", v.ID)
	}
	if err := s.makeRoom(ctx); err != nil {
		s.drops.Add(1)
		return err
	}
	rec, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("history: visit %s: %w", v.ID, err)
	}
	if rec, err = s.seal.Seal(rec, visitAD(v.ID)); err != nil {
		return err
	}
	known := 0
	if v.Decision.Known {
		known = 1
	}
	tags := map[string]bool{}
	if v.Decision.Name != "" {
		tags[s.visitPersonTag(v.Decision.Name)] = true
	}
	for _, c := range v.Decision.TopK {
		if c.Name != "" {
			tags[s.visitPersonTag(c.Name)] = true
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: store visit %s: %w", v.ID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	res, err := tx.ExecContext(ctx, `INSERT INTO visits(id, start_ms, last_ms, camera, known, rev, record) VALUES(?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET start_ms=excluded.start_ms, last_ms=excluded.last_ms, camera=excluded.camera,
			known=excluded.known, rev=excluded.rev, record=excluded.record
		WHERE excluded.rev >= visits.rev`,
		v.ID, v.Start.UnixMilli(), visitLast(v).UnixMilli(), v.Camera, known, v.Rev, rec)
	if err != nil {
		s.drops.Add(1)
		return fmt.Errorf("history: store visit %s: %w", v.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // a newer revision is stored already
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM visit_people WHERE visit_id = ?`, v.ID); err != nil {
		return fmt.Errorf("history: store visit %s: %w", v.ID, err)
	}
	for tag := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO visit_people(visit_id, person) VALUES(?, ?)`, v.ID, tag); err != nil {
			return fmt.Errorf("history: store visit %s: %w", v.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		s.drops.Add(1)
		return fmt.Errorf("history: store visit %s: %w", v.ID, err)
	}
	s.visits.Add(1)
	return nil
}

// VisitQuery selects visits for ListVisits; zero fields do not filter.
type VisitQuery struct {
	Camera string
	// Person selects visits whose decision or any top-k candidate has this
	// name, compared case-insensitively.
	Person string
	// Known selects visits decided known (true) or unknown (false).
	Known *bool
	// Before is a visit id: only older visits (pagination).
	Before string
	// Since: only visits seen at or after this time (last seen or ended).
	Since time.Time
	// Until: only visits that started before this time.
	Until time.Time
	// Limit defaults to 50 and is capped at 1000.
	Limit int
}

// ListVisits returns visits, newest (by start) first.
func (s *Store) ListVisits(ctx context.Context, q VisitQuery) ([]*face.Visit, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) { where, args = append(where, cond), append(args, arg) }
	if q.Camera != "" {
		add("camera = ?", q.Camera)
	}
	if q.Person != "" {
		add("id IN (SELECT visit_id FROM visit_people WHERE person = ?)", s.visitPersonTag(q.Person))
	}
	if q.Known != nil {
		k := 0
		if *q.Known {
			k = 1
		}
		add("known = ?", k)
	}
	if q.Before != "" {
		add("id < ?", q.Before)
	}
	if !q.Since.IsZero() {
		add("last_ms >= ?", q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		add("start_ms < ?", q.Until.UnixMilli())
	}
	return listRecords(ctx, s.db, "visits", where, args, q.Limit, s.decodeVisit)
}

// GetVisit returns one visit; an error wrapping ErrVisitNotFound when there
// is none with that id.
func (s *Store) GetVisit(ctx context.Context, id string) (*face.Visit, error) {
	var rec []byte
	err := s.db.QueryRowContext(ctx, `SELECT record FROM visits WHERE id = ?`, id).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrVisitNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("history: visit %s: %w", id, err)
	}
	return s.decodeVisit(id, rec)
}

func (s *Store) decodeVisit(id string, rec []byte) (*face.Visit, error) {
	p, err := s.seal.Open(rec, visitAD(id))
	if err != nil {
		return nil, fmt.Errorf("history: visit %s: %w", id, err)
	}
	var v face.Visit
	if err := json.Unmarshal(p, &v); err != nil {
		return nil, fmt.Errorf("history: visit %s: record: %w", id, err)
	}
	return &v, nil
}

// HitsStored reports which of ids are hits in the store (a visit's shots
// whose hits the retention or a full disk already deleted, or that are
// still on their way to the store, are not).
func (s *Store) HitsStored(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	const chunk = 500
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, `SELECT id FROM hits WHERE id IN (?`+strings.Repeat(",?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("history: hits stored: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("history: hits stored: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// CountVisits returns the number of stored visits.
func (s *Store) CountVisits(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM visits`).Scan(&n)
	return n, err
}

// sweepVisits deletes visits last seen before cut (Unix ms).
func (s *Store) sweepVisits(ctx context.Context, cut int64) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `DELETE FROM visit_people WHERE visit_id IN (SELECT id FROM visits WHERE last_ms < ?)`, cut); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM visits WHERE last_ms < ?`, cut)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}
