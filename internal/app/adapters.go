package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/publish"
	"github.com/srdgd/srdgd/publish/history"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// HistoryAPI adapts the hit history to the HTTP API's Hits and Auditor.
type HistoryAPI struct{ S *history.Store }

var (
	_ httpapi.Hits    = HistoryAPI{}
	_ httpapi.Visits  = HistoryAPI{}
	_ httpapi.Auditor = HistoryAPI{}
)

// ListHits implements httpapi.Hits.
func (h HistoryAPI) ListHits(ctx context.Context, q httpapi.HitQuery) ([]*face.Hit, error) {
	return h.S.List(ctx, history.Query{Camera: q.Camera, Person: q.Person, Known: q.Known, Before: q.Before, Since: q.Since, Limit: q.Limit})
}

// GetHit implements httpapi.Hits.
func (h HistoryAPI) GetHit(ctx context.Context, id string) (*face.Hit, error) {
	hit, err := h.S.Get(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return hit, err
}

// ListVisits implements httpapi.Visits.
func (h HistoryAPI) ListVisits(ctx context.Context, q httpapi.VisitQuery) ([]*face.Visit, error) {
	return h.S.ListVisits(ctx, history.VisitQuery{Camera: q.Camera, Person: q.Person, Known: q.Known, Before: q.Before,
		Since: q.Since, Until: q.Until, Limit: q.Limit})
}

// GetVisit implements httpapi.Visits.
func (h HistoryAPI) GetVisit(ctx context.Context, id string) (*face.Visit, error) {
	v, err := h.S.GetVisit(ctx, id)
	if errors.Is(err, history.ErrVisitNotFound) {
		return nil, fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return v, err
}

// HitsStored implements httpapi.Visits.
func (h HistoryAPI) HitsStored(ctx context.Context, ids []string) (map[string]bool, error) {
	return h.S.HitsStored(ctx, ids)
}

// Audit implements httpapi.Auditor.
func (h HistoryAPI) Audit(ctx context.Context, r httpapi.AuditRecord) error {
	return h.S.Audit(ctx, history.AuditEntry{Time: r.Time, Actor: "api:" + r.Actor, Action: r.Action, Target: r.Target, Detail: r.Detail, Remote: r.Remote})
}

// AuditSearch implements httpapi.Auditor.
func (h HistoryAPI) AuditSearch(ctx context.Context, q httpapi.AuditQuery) ([]httpapi.AuditRecord, error) {
	es, err := h.S.AuditSearch(ctx, history.AuditQuery{After: q.After, Before: q.Before, Newest: q.Newest,
		Actor: q.Actor, Action: q.Action, Target: q.Target, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.AuditRecord, len(es))
	for i, e := range es {
		out[i] = httpapi.AuditRecord{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, Remote: e.Remote}
	}
	return out, nil
}

// CameraStatuses snapshots every camera for the API, MQTT and metrics.
func CameraStatuses(cams []*ingest.Camera) publish.StatusFunc {
	return func() []publish.CameraStatus {
		out := make([]publish.CameraStatus, 0, len(cams))
		for _, c := range cams {
			s := c.Status()
			out = append(out, publish.CameraStatus{Camera: s.Camera, State: s.State, Connected: s.Connected, Codec: s.Codec,
				Width: s.Width, Height: s.Height, FPS: s.FPS, BitrateKbps: s.BitrateKbps, Frames: s.Frames,
				DecodeErrors: s.DecodeErrors, Reconnects: s.Reconnects, AuthFailures: s.AuthFailures, Dropped: s.Dropped, LastError: s.LastError,
				LastErrorAt: s.LastErrorAt, ConnectedSince: s.ConnectedSince})
		}
		return out
	}
}
