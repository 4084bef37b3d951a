package match

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/srdgd/srdgd/face"
)

// Offset is a threshold override: how much stricter (positive) or looser
// (negative) the identification threshold and the margin are for one
// person (stored in the gallery, SetOffset) or one camera (config
// cameras[].threshold_offset, margin_offset). It shifts whatever the
// decision is held to otherwise (the configured match.sr.x<scale> of a
// hit, the calibrated setting of a visit fused from n shots), so the same
// override means the same at x8 and x16 and for any number of shots. A
// camera's and the top candidate's offsets add up.
type Offset struct {
	Threshold float64 `json:"threshold_offset"`
	Margin    float64 `json:"margin_offset"`
}

// MaxOffset bounds an override either way: past it the threshold says
// nothing the calibration measured.
const MaxOffset = 0.3

// IsZero reports whether o changes nothing.
func (o Offset) IsZero() bool { return o.Threshold == 0 && o.Margin == 0 }

// Check validates the offsets: finite, within ±MaxOffset.
func (o Offset) Check() error {
	for _, c := range []struct {
		name string
		v    float64
	}{{"threshold_offset", o.Threshold}, {"margin_offset", o.Margin}} {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) || math.Abs(c.v) > MaxOffset {
			return fmt.Errorf("%s %v: want a number in [-%v, %v]", c.name, c.v, MaxOffset, MaxOffset)
		}
	}
	return nil
}

// Add is the sum of two offsets.
func (o Offset) Add(p Offset) Offset { return Offset{o.Threshold + p.Threshold, o.Margin + p.Margin} }

// Shifted is th with o applied: the identification threshold within
// [-1, 1], the margin within [0, 1].
func (th Thresholds) Shifted(o Offset) Thresholds {
	th.Identify = min(max(th.Identify+o.Threshold, -1), 1)
	th.Margin = min(max(th.Margin+o.Margin, 0), 1)
	return th
}

// CameraOffsets are the per-camera overrides by camera name.
type CameraOffsets map[string]Offset

// For is th shifted by camera's override and the scope that says so
// (face.OverrideCamera, or "" when the camera has none).
func (c CameraOffsets) For(camera string, th Thresholds) (Thresholds, Offset, string) {
	o, ok := c[camera]
	if !ok || o.IsZero() {
		return th, Offset{}, ""
	}
	return th.Shifted(o), o, face.OverrideCamera
}

// SetOffset sets (o non-nil) or clears (nil) the threshold override of
// the person called name; searches use it at once.
func (g *Gallery) SetOffset(ctx context.Context, name string, o *Offset) error {
	var thr, mar sql.NullFloat64
	if o != nil {
		if err := o.Check(); err != nil {
			return fmt.Errorf("gallery %s: override of %q: %w", g.path, name, err)
		}
		if !o.IsZero() {
			thr, mar = sql.NullFloat64{Float64: o.Threshold, Valid: true}, sql.NullFloat64{Float64: o.Margin, Valid: true}
		}
	}
	var id int64
	err := g.db.QueryRowContext(ctx, `UPDATE people SET threshold_offset = ?, margin_offset = ? WHERE name_key = ? RETURNING id`,
		thr, mar, g.nameKey(name)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("gallery %s: override: person %q: %w", g.path, name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("gallery %s: override of %q: %w", g.path, name, err)
	}
	g.mu.Lock()
	if e := g.index[id]; e != nil {
		e.offset = offsetOf(thr, mar)
	}
	g.mu.Unlock()
	return nil
}

// offsetOf reads the two columns (NULL: no override).
func offsetOf(thr, mar sql.NullFloat64) Offset {
	return Offset{Threshold: thr.Float64, Margin: mar.Float64}
}
