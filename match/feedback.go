package match

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strconv"
	"strings"
	"time"
)

// Verdict is an operator's feedback on a sighting (a hit or a visit).
type Verdict string

// Verdicts: Confirm ("this is X") adds the sighting's SR descriptor to X as
// a low-resolution template; Reject ("not X") adds it to X as a negative;
// NotEnrolled ("not anyone enrolled") adds it as a negative of every
// candidate the sighting's decision named or ranked first.
const (
	Confirm     Verdict = "confirm"
	Reject      Verdict = "reject"
	NotEnrolled Verdict = "not_enrolled"
)

// ParseVerdict checks a verdict name.
func ParseVerdict(s string) (Verdict, error) {
	switch v := Verdict(s); v {
	case Confirm, Reject, NotEnrolled:
		return v, nil
	}
	return "", fmt.Errorf("verdict %q: want %s, %s or %s", s, Confirm, Reject, NotEnrolled)
}

// template kinds in the templates table
const (
	kindConfirmed = "confirmed"
	kindRejected  = "rejected"
)

// MaxTemplates bounds the templates (confirmed plus rejected) one person
// keeps per embedder model; the oldest of the same kind go first.
const MaxTemplates = 64

// Sighting is the face feedback is given on: the SR face (whole image) of a
// hit or a visit's best shot, at the scale it was restored at, and where it
// came from (the hit or visit id, stored sealed with the template).
type Sighting struct {
	Face   image.Image
	Scale  int
	Source string
}

// Template is one stored feedback template.
type Template struct {
	ID      int64
	Person  string
	Kind    string // "confirmed" or "rejected"
	Scale   int
	Source  string
	Created time.Time
}

// templateModel names the descriptor space of a template: the embedder's
// model, with the SR adapter that mapped it when one did.
func templateModel(e Embedding) string {
	if e.Adapter == "" {
		return e.Model
	}
	return e.Model + "|adapter " + e.Adapter
}

// templateModels are the spaces of the templates search can use now: the
// embedder's, and each scale's with the adapter it uses.
func (g *Gallery) templateModels() []any {
	out := []any{g.emb.ModelID()}
	if a, ok := g.emb.(interface{ AdapterID(int) string }); ok {
		for _, sc := range []int{8, 16} {
			if id := a.AdapterID(sc); id != "" {
				out = append(out, templateModel(Embedding{Model: g.emb.ModelID(), Adapter: id}))
			}
		}
	}
	return out
}

func templateAD(personID int64, kind, model string) string {
	return "srdgd/template/person/" + strconv.FormatInt(personID, 10) + "/" + kind + "/" + model
}

func templateSourceAD(personID int64) string {
	return "srdgd/template-source/person/" + strconv.FormatInt(personID, 10)
}

// AddFeedback stores an operator's verdict on a sighting for the person
// called name: the sighting's descriptor (the gallery's embedder on the SR
// face, which is kept sealed so that a re-embed can redo it) as a confirmed
// template or a negative. It returns the template's id.
func (g *Gallery) AddFeedback(ctx context.Context, name string, v Verdict, s Sighting) (int64, error) {
	kind := kindConfirmed
	switch v {
	case Confirm:
	case Reject, NotEnrolled:
		kind = kindRejected
	default:
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, errors.New("unknown verdict "+strconv.Quote(string(v))))
	}
	if g.emb == nil {
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, ErrNoEmbedder)
	}
	if s.Face == nil || s.Face.Bounds().Empty() {
		return 0, fmt.Errorf("gallery %s: feedback: the sighting has no face image", g.path)
	}
	if s.Scale != 8 && s.Scale != 16 {
		return 0, fmt.Errorf("gallery %s: feedback: scale %d, want 8 or 16", g.path, s.Scale)
	}
	pid, err := g.personID(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, err)
	}
	// in the space of the probes it will be compared with: an SR adapter
	// of the scale maps it as it maps them
	embs, err := g.emb.Embed(ctx, []EmbedInput{{Image: s.Face, Scale: s.Scale}})
	if err != nil {
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, err)
	}
	e := embs[0]
	model := templateModel(e)
	vec, err := g.seal.Seal(vecBytes(e.Vector), templateAD(pid, kind, model))
	if err != nil {
		return 0, err
	}
	src, err := g.seal.Seal([]byte(s.Source), templateSourceAD(pid))
	if err != nil {
		return 0, err
	}
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO templates (person_id, kind, model, scale, vec, source, created)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, pid, kind, model, s.Scale, vec, src, time.Now().UTC().Format(timeLayout)).Scan(&id); err != nil {
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, err)
	}
	// bounded: the oldest of this kind beyond MaxTemplates go
	if _, err := tx.ExecContext(ctx, `DELETE FROM templates WHERE id IN (
		SELECT id FROM templates WHERE person_id = ? AND kind = ? AND model = ? ORDER BY id DESC LIMIT -1 OFFSET ?)`,
		pid, kind, model, MaxTemplates); err != nil {
		return 0, fmt.Errorf("gallery %s: feedback: %w", g.path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("gallery %s: feedback: commit: %w", g.path, err)
	}
	return id, g.loadTemplates(ctx, pid)
}

// Templates lists a person's feedback templates, newest first.
func (g *Gallery) Templates(ctx context.Context, name string) ([]Template, error) {
	pid, err := g.personID(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: templates: %w", g.path, err)
	}
	rows, err := g.db.QueryContext(ctx, `SELECT id, kind, scale, source, created FROM templates WHERE person_id = ? ORDER BY id DESC`, pid)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: templates: %w", g.path, err)
	}
	defer rows.Close()
	var out []Template
	for rows.Next() {
		var t Template
		var src []byte
		var created string
		if err := rows.Scan(&t.ID, &t.Kind, &t.Scale, &src, &created); err != nil {
			return nil, fmt.Errorf("gallery %s: templates: %w", g.path, err)
		}
		s, err := g.seal.Open(src, templateSourceAD(pid))
		if err != nil {
			return nil, fmt.Errorf("gallery %s: template %d: %w", g.path, t.ID, err)
		}
		t.Person, t.Source = name, string(s)
		t.Created, _ = time.Parse(timeLayout, created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RemoveTemplate deletes one feedback template of the person (an operator
// undoing a verdict).
func (g *Gallery) RemoveTemplate(ctx context.Context, name string, id int64) error {
	pid, err := g.personID(ctx, name)
	if err != nil {
		return fmt.Errorf("gallery %s: remove template: %w", g.path, err)
	}
	res, err := g.db.ExecContext(ctx, `DELETE FROM templates WHERE id = ? AND person_id = ?`, id, pid)
	if err != nil {
		return fmt.Errorf("gallery %s: remove template: %w", g.path, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("gallery %s: template %d of %q: %w", g.path, id, name, ErrNotFound)
	}
	return g.loadTemplates(ctx, pid)
}

// loadTemplates reads one person's templates of the current model into the
// index (pid < 0: everyone's).
func (g *Gallery) loadTemplates(ctx context.Context, pid int64) error {
	if g.emb == nil {
		return nil
	}
	args := g.templateModels()
	q := `SELECT person_id, kind, model, vec FROM templates WHERE model IN (?` + strings.Repeat(", ?", len(args)-1) + `)`
	if pid >= 0 {
		q += ` AND person_id = ?`
		args = append(args, pid)
	}
	rows, err := g.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("loading templates: %w", err)
	}
	defer rows.Close()
	type tv struct{ lr, neg [][]float32 }
	got := map[int64]*tv{}
	for rows.Next() {
		var p int64
		var kind, model string
		var blob []byte
		if err := rows.Scan(&p, &kind, &model, &blob); err != nil {
			return fmt.Errorf("loading templates: %w", err)
		}
		plain, err := g.seal.Open(blob, templateAD(p, kind, model))
		if err != nil {
			return fmt.Errorf("template of person %d: %w", p, err)
		}
		v, err := bytesVec(plain)
		if err != nil {
			return fmt.Errorf("template of person %d: %w", p, err)
		}
		t := got[p]
		if t == nil {
			t = &tv{}
			got[p] = t
		}
		if kind == kindConfirmed {
			t.lr = append(t.lr, v)
		} else {
			t.neg = append(t.neg, v)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("loading templates: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, ix := range g.index {
		if pid >= 0 && id != pid {
			continue
		}
		ix.lr, ix.neg = nil, nil
		if t := got[id]; t != nil {
			ix.lr, ix.neg = t.lr, t.neg
		}
	}
	return nil
}
