package httpapi

import (
	"context"
	"time"

	"github.com/srdgd/srdgd/face"
)

// HitQuery selects hits, newest first. Zero fields do not filter.
type HitQuery struct {
	Camera string
	// Person is the matched person's name.
	Person string
	// Known selects known (true) or unknown (false) faces.
	Known *bool
	// Before is a hit id: only hits older than it (pagination).
	Before string
	// Since: only hits at or after this time.
	Since time.Time
	// Limit is the most hits returned, >= 1.
	Limit int
}

// Hits is the hit history (publish/history behind an adapter).
type Hits interface {
	// ListHits returns hits newest first, without images.
	ListHits(ctx context.Context, q HitQuery) ([]*face.Hit, error)
	// GetHit returns one hit with its images; an error wrapping ErrNotFound
	// when there is none with that id.
	GetHit(ctx context.Context, id string) (*face.Hit, error)
}

// VisitQuery selects visits, newest (by start) first. Zero fields do not
// filter.
type VisitQuery struct {
	Camera string
	// Person is a gallery name, compared case-insensitively with the
	// visit's decision and every one of its top candidates.
	Person string
	// Known selects visits decided known (true) or unknown (false).
	Known *bool
	// Before is a visit id: only visits older than it (pagination).
	Before string
	// Since: only visits seen at or after this time; Until: only visits
	// that started before it.
	Since, Until time.Time
	// Limit is the most visits returned, >= 1.
	Limit int
}

// Visits is the visit history (publish/history behind an adapter).
type Visits interface {
	ListVisits(ctx context.Context, q VisitQuery) ([]*face.Visit, error)
	// GetVisit returns one visit; an error wrapping ErrNotFound when there
	// is none with that id.
	GetVisit(ctx context.Context, id string) (*face.Visit, error)
	// HitsStored reports which of the hit ids (a visit's shots) are in the
	// hit history, so that image links are given only for those.
	HitsStored(ctx context.Context, ids []string) (map[string]bool, error)
}

// AuditRecord is one audit log entry. Seq and Time are set by the store.
type AuditRecord struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is "token", "session:<8 hex>" or "anonymous" (no token set).
	Actor string `json:"actor"`
	// Action is e.g. "hit.view", "hit.image", "hits.list", "visit.view",
	// "visits.list", "gallery.add", "gallery.add.failed",
	// "gallery.remove", "gallery.photo", "login" (the CLI uses the same
	// names).
	Action string `json:"action"`
	Target string `json:"target"`
	Detail string `json:"detail,omitempty"`
	Remote string `json:"remote"`
}

// Auditor writes and reads the audit log.
type Auditor interface {
	Audit(ctx context.Context, r AuditRecord) error
	// AuditSearch returns the entries q selects.
	AuditSearch(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
}

// AuditQuery selects audit entries; zero fields do not filter.
type AuditQuery struct {
	// After and Before bound Seq (exclusive).
	After, Before int64
	// Newest lists newest first.
	Newest bool
	// Actor as the log stores it ("api:token", "cli:root").
	Actor string
	// Action exactly, or every action it prefixes when it ends in ".".
	Action string
	// Target exactly (a person's name, a hit or visit id).
	Target string
	Limit  int
}

// Person is one enrolled identity (face.Person).
type Person = face.Person

// Photo is one uploaded enrolment photo.
type Photo struct {
	Source string
	Data   []byte
}

// Photo outcomes reported by Gallery.Enrol.
const (
	PhotoEnrolled     = "enrolled"
	PhotoNoFace       = "no_face"
	PhotoSeveralFaces = "several_faces"
	PhotoUnreadable   = "unreadable"
	PhotoTooLarge     = "too_large"
	PhotoRejected     = "rejected"
)

// PhotoResult is the outcome for one photo of an enrolment.
type PhotoResult struct {
	Source string `json:"source"`
	// Result is one of the Photo* constants.
	Result string `json:"result"`
	// Error says why the photo was not enrolled.
	Error string `json:"error,omitempty"`
	// Box is the face found, [x0, y0, x1, y1] in the photo's pixels.
	Box []int `json:"box,omitempty"`
}

// Gallery is the enrolled people (match.Gallery behind an adapter, see
// internal/app).
type Gallery interface {
	People(ctx context.Context) ([]Person, error)
	// Enrol adds photos of name (creating the person); the error is for the
	// gallery's own failures, or wraps ErrInvalid for a bad name.
	Enrol(ctx context.Context, name string, photos []Photo) ([]PhotoResult, error)
	// Remove deletes a person; an error wrapping ErrNotFound when absent.
	Remove(ctx context.Context, name string) error
	// PhotoJPEG returns the person's first enrolled photo; an error wrapping
	// ErrNotFound when the person does not exist.
	PhotoJPEG(ctx context.Context, name string) ([]byte, error)
	// SetWatchlist marks or unmarks a person; an error wrapping ErrNotFound
	// when the person does not exist.
	SetWatchlist(ctx context.Context, name string, on bool) error
	// SetOverride sets the person's threshold override (both offsets 0:
	// none); an error wrapping ErrNotFound for an unknown person, ErrInvalid
	// for offsets out of range.
	SetOverride(ctx context.Context, name string, threshold, margin float64) error
	// Feedback stores an operator's verdict (face.VerdictConfirm,
	// VerdictReject or VerdictNotEnrolled) on a sighting's SR face (JPEG, restored at
	// scale) for person, from source (the hit id), and returns the stored
	// template's id; errors wrap ErrNotFound (no such person) or
	// ErrInvalid.
	Feedback(ctx context.Context, person, verdict string, srJPEG []byte, scale int, source string) (int64, error)
}
