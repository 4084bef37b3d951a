package history

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// Hash chains the entry to the one before it (SHA-256, hex), computed
	// over the stored row: in an encrypted store that is the keyed hash of
	// the target and an empty detail (see Audit).
	Hash string `json:"hash"`
}

// auditSealed is what an encrypted store seals of an entry: the target
// names a person for gallery entries, and a hits query may too.
type auditSealed struct {
	Target string `json:"t"`
	Detail string `json:"d,omitempty"`
}

const (
	auditTargetInfo = "srdgd history audit target v1"
	auditTagPrefix  = "k:"
	// auditResealed is the action of the entry that says when the entries
	// written before targets were sealed were re-sealed (resealAudit).
	auditResealed = "audit.resealed"
)

func chain(prev string, e AuditEntry) string {
	h := sha256.New()
	for _, f := range []string{prev, strconv.FormatInt(e.Time.UnixMilli(), 10), e.Actor, e.Action, e.Target, e.Detail, e.Remote} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func auditAD(hash string) string { return "srdgd/history/audit/" + hash }

// targetTag is what the target column of an encrypted store holds: "k:"
// and the HMAC-SHA256 (key derived from the store's key) of the target, so
// that the entries on one person or hit share it and say nothing without
// the key; "" stays "".
func (s *Store) targetTag(target string) string {
	if target == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.auditMAC)
	m.Write([]byte(target))
	return auditTagPrefix + hex.EncodeToString(m.Sum(nil))
}

func auditMAC(key []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, key, nil, auditTargetInfo, sha256.Size)
}

// stored turns an entry into its row: in an encrypted store the target is
// replaced by its tag and the detail emptied, both sealed (bound to the
// entry's hash, which also covers the tag) into the returned blob; nil in a
// plaintext store. e.Hash is set.
func (s *Store) stored(prev string, e AuditEntry) (AuditEntry, []byte, error) {
	if s.seal == nil {
		e.Hash = chain(prev, e)
		return e, nil, nil
	}
	plain, err := json.Marshal(auditSealed{Target: e.Target, Detail: e.Detail})
	if err != nil {
		return e, nil, err
	}
	e.Target, e.Detail = s.targetTag(e.Target), ""
	e.Hash = chain(prev, e)
	blob, err := s.seal.Seal(plain, auditAD(e.Hash))
	return e, blob, err
}

// opened is the reverse of stored for an entry read back: the sealed target
// and detail, checked against the tag.
func (s *Store) opened(e AuditEntry, blob []byte) (AuditEntry, error) {
	if blob == nil {
		return e, nil // plaintext store, or an entry resealAudit could not rewrite
	}
	if s.seal == nil {
		return e, fmt.Errorf("audit entry %d is sealed and the store has no key", e.Seq)
	}
	p, err := s.seal.Open(blob, auditAD(e.Hash))
	if err != nil {
		return e, fmt.Errorf("audit entry %d (%s): target: %w", e.Seq, e.Action, err)
	}
	var a auditSealed
	if err := json.Unmarshal(p, &a); err != nil {
		return e, fmt.Errorf("audit entry %d (%s): target: %w", e.Seq, e.Action, err)
	}
	if s.targetTag(a.Target) != e.Target {
		return e, fmt.Errorf("audit entry %d (%s): the sealed target does not match the stored tag: the log was altered", e.Seq, e.Action)
	}
	e.Target, e.Detail = a.Target, a.Detail
	return e, nil
}

// Audit appends an entry. The table refuses UPDATE and DELETE (triggers) and
// each entry carries the hash of the previous one, so VerifyAudit finds a
// row that was changed or removed behind the daemon's back. In an encrypted
// store the target and detail are sealed with the key (a gallery entry's
// target is a person's name) and the target column holds a keyed hash;
// AuditLog gives them back in the clear.
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
	row, blob, err := s.stored(prev, e)
	if err != nil {
		return fmt.Errorf("audit: seal %s: %w", e.Action, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO audit(time_ms, actor, action, target, detail, remote, prev, hash, sealed)
		VALUES(?,?,?,?,?,?,?,?,?)`, row.Time.UnixMilli(), row.Actor, row.Action, row.Target, row.Detail, row.Remote, prev, row.Hash, blob)
	if err != nil {
		return fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns up to limit entries with Seq > afterSeq, oldest first
// (limit defaults to 100, capped at 1000), with targets and details in the
// clear.
func (s *Store) AuditLog(ctx context.Context, afterSeq int64, limit int) ([]AuditEntry, error) {
	return s.AuditSearch(ctx, AuditQuery{After: afterSeq, Limit: limit})
}

// AuditQuery selects audit entries for AuditSearch; zero fields do not
// filter.
type AuditQuery struct {
	// After and Before bound Seq (exclusive): After pages forwards, Before
	// backwards.
	After, Before int64
	// Newest lists newest first (Before pages), else oldest first.
	Newest bool
	// Actor: entries of this actor exactly ("api:token", "cli:root").
	Actor string
	// Action: this action exactly, or, ending in ".", every action it
	// prefixes ("gallery." is gallery.add, gallery.remove, ...).
	Action string
	// Target: entries on this target exactly (a person's name, a hit or
	// visit id); in an encrypted store compared through its keyed tag.
	Target string
	// Limit defaults to 100 and is capped at 1000.
	Limit int
}

// AuditSearch returns the entries q selects, with targets and details in
// the clear.
func (s *Store) AuditSearch(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	where := []string{"seq > ?"}
	args := []any{q.After}
	if q.Before > 0 {
		where, args = append(where, "seq < ?"), append(args, q.Before)
	}
	if q.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, q.Actor)
	}
	switch {
	case strings.HasSuffix(q.Action, "."):
		where, args = append(where, "substr(action, 1, ?) = ?"), append(args, len(q.Action), q.Action)
	case q.Action != "":
		where, args = append(where, "action = ?"), append(args, q.Action)
	}
	if q.Target != "" {
		tag := q.Target
		if s.seal != nil {
			tag = s.targetTag(q.Target)
		}
		where, args = append(where, "target = ?"), append(args, tag)
	}
	order := "seq"
	if q.Newest {
		order = "seq DESC"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, time_ms, actor, action, target, detail, remote, hash, sealed
		FROM audit WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var ms int64
		var blob []byte
		if err := rows.Scan(&e.Seq, &ms, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote, &e.Hash, &blob); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(ms).UTC()
		if e, err = s.opened(e, blob); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// VerifyAudit walks the whole chain and reports the first entry whose hash
// does not follow from its predecessor, whose sealed target does not open
// or match its tag, or a gap in the sequence.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, time_ms, actor, action, target, detail, remote, prev, hash, sealed FROM audit ORDER BY seq`)
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
		var blob []byte
		if err := rows.Scan(&e.Seq, &ms, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote, &prev, &e.Hash, &blob); err != nil {
			return n, err
		}
		e.Time = time.UnixMilli(ms)
		if prev != prevHash || chain(prevHash, e) != e.Hash {
			return n, fmt.Errorf("audit log entry %d (%s) does not chain to the entry before it: the log was altered", e.Seq, e.Action)
		}
		if lastSeq != 0 && e.Seq != lastSeq+1 {
			return n, fmt.Errorf("audit log: entries %d to %d are missing", lastSeq+1, e.Seq-1)
		}
		if _, err := s.opened(e, blob); err != nil {
			return n, fmt.Errorf("audit log: %w", err)
		}
		prevHash, lastSeq = e.Hash, e.Seq
		n++
	}
	return n, rows.Err()
}

// resealAudit brings the entries of an encrypted store written before
// targets were sealed (sealed IS NULL; they name people in the clear) to the
// sealed form. The chain is verified first: a log that does not verify is
// left as it is (the error says so) rather than rewritten over the evidence.
// Then, in one transaction with the update trigger lifted, each entry gets
// its tag and sealed blob and the chain is recomputed from the first
// rewritten entry on; an "audit.resealed" entry records how many and the old
// head hash. secure_delete zeroes the replaced cells, and a checkpoint
// empties the WAL, so the clear targets leave the file.
func (s *Store) resealAudit(ctx context.Context) (int, error) {
	if s.seal == nil {
		return 0, nil
	}
	var legacy int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM audit WHERE sealed IS NULL AND (target != '' OR detail != '')`).Scan(&legacy); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if legacy == 0 {
		return 0, nil
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		return 0, fmt.Errorf("%d audit entries name their targets in the clear and were not re-sealed, as the log does not verify: %w", legacy, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return 0, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = OFF`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT seq, time_ms, actor, action, target, detail, remote, hash, sealed FROM audit ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	type row struct {
		e    AuditEntry
		blob []byte
	}
	var all []row
	for rows.Next() {
		var r row
		var ms int64
		if err := rows.Scan(&r.e.Seq, &ms, &r.e.Actor, &r.e.Action, &r.e.Target, &r.e.Detail, &r.e.Remote, &r.e.Hash, &r.blob); err != nil {
			rows.Close()
			return 0, err
		}
		r.e.Time = time.UnixMilli(ms)
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DROP TRIGGER audit_no_update`); err != nil {
		return 0, err
	}
	prev, oldHead, done := "", "", 0
	for _, r := range all {
		oldHead = r.e.Hash
		clear := r.e
		if r.blob != nil {
			if clear, err = s.opened(r.e, r.blob); err != nil {
				return 0, err
			}
		}
		st, blob, err := s.stored(prev, clear)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit SET target = ?, detail = ?, prev = ?, hash = ?, sealed = ? WHERE seq = ?`,
			st.Target, st.Detail, prev, st.Hash, blob, r.e.Seq); err != nil {
			return 0, fmt.Errorf("audit entry %d: %w", r.e.Seq, err)
		}
		if r.blob == nil {
			done++
		}
		prev = st.Hash
	}
	if _, err := tx.ExecContext(ctx, auditNoUpdate); err != nil {
		return 0, err
	}
	note := AuditEntry{Time: s.o.Now(), Actor: "srdgd", Action: auditResealed,
		Detail: fmt.Sprintf("%d entries written with clear targets re-sealed; the chain verified before and was recomputed from entry 1; old head %s", done, oldHead)}
	st, blob, err := s.stored(prev, note)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit(time_ms, actor, action, target, detail, remote, prev, hash, sealed)
		VALUES(?,?,?,?,?,?,?,?,?)`, st.Time.UnixMilli(), st.Actor, st.Action, st.Target, st.Detail, st.Remote, prev, st.Hash, blob); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return done, fmt.Errorf("checkpoint after re-sealing: %w", err)
	}
	return done, nil
}
