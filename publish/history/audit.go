package history

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor: who ("cli:root", "api:token", "api:session:1a2b3c").
	Actor string `json:"actor"`
	// Action: what ("gallery.add", "gallery.remove", "hits.list", "hits.get", ...).
	Action string `json:"action"`
	// Target: on what (a person name, a hit id, a query).
	Target string `json:"target"`
	Detail string `json:"detail,omitempty"`
	Remote string `json:"remote,omitempty"`
	// Hash chains the entry to the one before it (SHA-256, hex).
	Hash string `json:"hash"`
}

func chain(prev string, e AuditEntry) string {
	h := sha256.New()
	for _, f := range []string{prev, strconv.FormatInt(e.Time.UnixMilli(), 10), e.Actor, e.Action, e.Target, e.Detail, e.Remote} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Audit appends an entry. The table refuses UPDATE and DELETE (triggers) and
// each entry carries the hash of the previous one, so VerifyAudit finds a
// row that was changed or removed behind the daemon's back.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" {
		return fmt.Errorf("audit: entry without an action")
	}
	if e.Time.IsZero() {
		e.Time = s.o.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev string
	err := s.db.QueryRowContext(ctx, `SELECT hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: %w", err)
	}
	e.Hash = chain(prev, e)
	_, err = s.db.ExecContext(ctx, `INSERT INTO audit(time_ms, actor, action, target, detail, remote, prev, hash)
		VALUES(?,?,?,?,?,?,?,?)`, e.Time.UnixMilli(), e.Actor, e.Action, e.Target, e.Detail, e.Remote, prev, e.Hash)
	if err != nil {
		return fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns up to limit entries with Seq > afterSeq, oldest first
// (limit defaults to 100, capped at 1000).
func (s *Store) AuditLog(ctx context.Context, afterSeq int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := s.db.QueryContext(ctx, `SELECT seq, time_ms, actor, action, target, detail, remote, hash
		FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var ms int64
		if err := rows.Scan(&e.Seq, &ms, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// VerifyAudit walks the whole chain and reports the first entry whose hash
// does not follow from its predecessor, or a gap in the sequence.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, time_ms, actor, action, target, detail, remote, prev, hash FROM audit ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	prevHash, n := "", 0
	var lastSeq int64
	for rows.Next() {
		var e AuditEntry
		var ms int64
		var prev string
		if err := rows.Scan(&e.Seq, &ms, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote, &prev, &e.Hash); err != nil {
			return n, err
		}
		e.Time = time.UnixMilli(ms)
		if prev != prevHash || chain(prevHash, e) != e.Hash {
			return n, fmt.Errorf("audit log entry %d (%s %s) does not chain to the entry before it: the log was altered", e.Seq, e.Action, e.Target)
		}
		if lastSeq != 0 && e.Seq != lastSeq+1 {
			return n, fmt.Errorf("audit log: entries %d to %d are missing", lastSeq+1, e.Seq-1)
		}
		prevHash, lastSeq = e.Hash, e.Seq
		n++
	}
	return n, rows.Err()
}
