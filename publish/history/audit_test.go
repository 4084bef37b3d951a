package history

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/seal"
)

// filesHold reports which needles are in the raw bytes of the store's files
// (the database, its -wal and -shm).
func filesHold(t *testing.T, path string, needles []string) []string {
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

// TestAuditTargetsSealed: in an encrypted store no audit target or detail
// is readable in the files, while AuditLog and VerifyAudit work with them
// in the clear; a sealed target moved to another entry is found. In a
// plaintext store (no key: match.encrypt off) they are in the clear.
func TestAuditTargetsSealed(t *testing.T) {
	ctx := context.Background()
	entries := []AuditEntry{
		{Actor: "cli:root", Action: "gallery.add", Target: "Ada Lovelace", Detail: "2 of 2 photos enrolled"},
		{Actor: "api:token", Action: "hits.list", Target: "person=Ada+Lovelace&limit=5", Detail: "3 hits", Remote: "127.0.0.1:5"},
		{Actor: "api:token", Action: "gallery.photo", Target: "Ada Lovelace"},
		{Actor: "api:token", Action: "login"},
		{Actor: "cli:root", Action: "gallery.remove", Target: "Grace Hopper"},
	}
	needles := []string{"Ada Lovelace", "Ada+Lovelace", "Grace Hopper", "photos enrolled"}
	for _, enc := range []bool{true, false} {
		t.Run(map[bool]string{false: "plaintext", true: "encrypted"}[enc], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			o := Options{Path: path}
			if enc {
				o.Key = key(1)
			}
			s := open(t, o)
			for _, e := range entries {
				if err := s.Audit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.AuditLog(ctx, 0, 0)
			if err != nil || len(got) != len(entries) {
				t.Fatalf("AuditLog: %d entries, %v", len(got), err)
			}
			for i, e := range got {
				w := entries[i]
				if e.Seq != int64(i+1) || e.Actor != w.Actor || e.Action != w.Action || e.Target != w.Target || e.Detail != w.Detail || e.Remote != w.Remote {
					t.Errorf("entry %d = %+v, want %+v", i+1, e, w)
				}
			}
			if n, err := s.VerifyAudit(ctx); n != len(entries) || err != nil {
				t.Fatalf("verify: %d, %v", n, err)
			}
			found := filesHold(t, path, needles)
			s.Close()
			found = append(found, filesHold(t, path, needles)...)
			if !enc {
				if len(found) == 0 {
					t.Fatal("plaintext store: no target in the files: the scan is broken")
				}
				return
			}
			if len(found) > 0 {
				t.Fatalf("audit targets in the clear in the encrypted store's files: %q", found)
			}
			// the two "Ada Lovelace" entries share their tag; a sealed target
			// moved onto another entry does not open there
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			var t1, t3 string
			if err := db.QueryRow(`SELECT (SELECT target FROM audit WHERE seq = 1), (SELECT target FROM audit WHERE seq = 3)`).Scan(&t1, &t3); err != nil {
				t.Fatal(err)
			}
			if t1 != t3 || !strings.HasPrefix(t1, auditTagPrefix) {
				t.Fatalf("tags %q and %q: want one keyed tag for one target", t1, t3)
			}
			for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET sealed = (SELECT sealed FROM audit WHERE seq = 5) WHERE seq = 3`} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			s2 := open(t, o)
			if _, err := s2.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), "entry 3") {
				t.Fatalf("verify after moving a sealed target: %v", err)
			}
			if _, err := s2.AuditLog(ctx, 0, 0); err == nil || !strings.Contains(err.Error(), "entry 3") {
				t.Fatalf("AuditLog after moving a sealed target: %v", err)
			}
		})
	}
}

// oldSchema is the history schema as srdgd wrote it before audit targets
// were sealed (no audit.sealed column), verbatim.
var oldSchema = []string{
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
	`CREATE TABLE IF NOT EXISTS audit (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		time_ms INTEGER NOT NULL,
		actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
		detail TEXT NOT NULL, remote TEXT NOT NULL,
		prev TEXT NOT NULL, hash TEXT NOT NULL)`,
	`CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	`CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
		BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
}

// writeOldHistory builds an encrypted history of the old layout by hand,
// with audit entries chained as the old code did, targets in the clear.
func writeOldHistory(t *testing.T, path string, entries []AuditEntry) {
	t.Helper()
	sl, err := seal.New(key(1))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range oldSchema {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	kc, _ := sl.Seal([]byte(keyCheckText), keyCheckAD)
	if _, err := db.Exec(`INSERT INTO meta(k, v) VALUES('key_check', ?)`, kc); err != nil {
		t.Fatal(err)
	}
	prev := ""
	for i, e := range entries {
		e.Time = time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC)
		e.Hash = chain(prev, e)
		if _, err := db.Exec(`INSERT INTO audit(time_ms, actor, action, target, detail, remote, prev, hash) VALUES(?,?,?,?,?,?,?,?)`,
			e.Time.UnixMilli(), e.Actor, e.Action, e.Target, e.Detail, e.Remote, prev, e.Hash); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
}

// TestAuditResealsOldEntries opens a history written before audit targets
// were sealed: the entries are re-sealed in place (chain verified first,
// then recomputed), an audit.resealed entry says so, the log reads and
// verifies as before, and no old target is left in the files. A log whose
// chain is broken is left as it is, and the store still opens.
func TestAuditResealsOldEntries(t *testing.T) {
	ctx := context.Background()
	old := []AuditEntry{
		{Actor: "cli:root", Action: "gallery.add", Target: "Ada Lovelace", Detail: "1 of 1 photos enrolled"},
		{Actor: "api:token", Action: "hits.list", Target: "person=Grace+Hopper", Detail: "0 hits", Remote: "127.0.0.1:9"},
		{Actor: "cli:root", Action: "gallery.remove", Target: "Ada Lovelace"},
	}
	needles := []string{"Ada Lovelace", "Grace+Hopper", "photos enrolled"}
	path := filepath.Join(t.TempDir(), "history.db")
	writeOldHistory(t, path, old)
	if len(filesHold(t, path, needles)) == 0 {
		t.Fatal("the old-layout fixture holds no clear target: the scan below would prove nothing")
	}
	s := open(t, Options{Path: path, Key: key(1)})
	if err := s.Audit(ctx, AuditEntry{Actor: "api:token", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AuditLog(ctx, 0, 0)
	if err != nil || len(got) != 5 {
		t.Fatalf("AuditLog: %+v, %v", got, err)
	}
	for i, w := range old {
		if e := got[i]; e.Action != w.Action || e.Target != w.Target || e.Detail != w.Detail || e.Remote != w.Remote || e.Actor != w.Actor {
			t.Errorf("entry %d after re-sealing = %+v, want %+v", i+1, e, w)
		}
	}
	if e := got[3]; e.Action != auditResealed || !strings.Contains(e.Detail, "3 entries") {
		t.Errorf("entry 4 = %+v, want the audit.resealed note", e)
	}
	if n, err := s.VerifyAudit(ctx); n != 5 || err != nil {
		t.Fatalf("verify after re-sealing: %d, %v", n, err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE audit SET target = 'x' WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("the update trigger is not back after re-sealing: %v", err)
	}
	found := filesHold(t, path, needles)
	s.Close()
	found = append(found, filesHold(t, path, needles)...)
	if len(found) > 0 {
		t.Fatalf("old audit targets still in the files: %q", found)
	}
	// reopened: nothing more to re-seal
	s = open(t, Options{Path: path, Key: key(1)})
	if n, err := s.VerifyAudit(ctx); n != 5 || err != nil {
		t.Fatalf("verify after reopening: %d, %v", n, err)
	}
	s.Close()

	// a broken old chain is not rewritten
	broken := filepath.Join(t.TempDir(), "history.db")
	writeOldHistory(t, broken, old)
	db, _ := sql.Open("sqlite", broken)
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET target = 'forged' WHERE seq = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	var logs bytes.Buffer
	s = open(t, Options{Path: broken, Key: key(1), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "not re-sealed") || !strings.Contains(logs.String(), "entry 2") {
		t.Errorf("log after opening a broken old chain: %s", logs.String())
	}
	if strings.Contains(logs.String(), "Ada") || strings.Contains(logs.String(), "forged") {
		t.Errorf("the warning names an audit target: %s", logs.String())
	}
	if _, err := s.VerifyAudit(ctx); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("verify of the broken old chain: %v", err)
	}
	got, err = s.AuditLog(ctx, 0, 0)
	if err != nil || !slices.ContainsFunc(got, func(e AuditEntry) bool { return e.Target == "forged" }) {
		t.Fatalf("the broken old log was rewritten: %+v %v", got, err)
	}
}
