package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// GalleryAPI is an httpapi.Gallery over a match.Gallery, mapping match's
// sentinel errors to the API's.
type GalleryAPI struct {
	g *match.Gallery
}

var _ httpapi.Gallery = (*GalleryAPI)(nil)

// NewGalleryAPI adapts g; the gallery must have been opened with an
// embedder and a face finder for Enrol to work.
func NewGalleryAPI(g *match.Gallery) *GalleryAPI { return &GalleryAPI{g: g} }

// People implements httpapi.Gallery.
func (a *GalleryAPI) People(ctx context.Context) ([]httpapi.Person, error) {
	ps, err := a.g.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.Person, 0, len(ps))
	for _, p := range ps {
		out = append(out, PersonDoc(p, true))
	}
	return out, nil
}

// PersonDoc is p's JSON document (API and CLI); searchable: whether the
// embedder loaded, so p.Searchable was counted.
func PersonDoc(p match.Person, searchable bool) face.Person {
	d := face.Person{ID: p.ID, Name: p.Name, Watchlist: p.Watchlist,
		Male: p.Attributes.Male, Glasses: p.Attributes.Glasses, NoBeard: p.Attributes.NoBeard,
		Photos: p.Images, Created: p.Created, ThresholdOffset: p.Offset.Threshold, MarginOffset: p.Offset.Margin}
	if searchable {
		n := p.Searchable
		d.Searchable = &n
	}
	return d
}

// Enrol implements httpapi.Gallery.
func (a *GalleryAPI) Enrol(ctx context.Context, name string, photos []httpapi.Photo) ([]httpapi.PhotoResult, error) {
	if err := match.CheckName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", httpapi.ErrInvalid, err)
	}
	in := make([]match.Photo, len(photos))
	for i, p := range photos {
		in[i] = match.Photo{Source: p.Source, Data: p.Data}
	}
	res, err := a.g.Add(ctx, name, in)
	out := make([]httpapi.PhotoResult, len(res))
	for i, r := range res {
		out[i] = photoResult(r)
	}
	return out, err
}

func photoResult(r match.PhotoResult) httpapi.PhotoResult {
	o := httpapi.PhotoResult{Source: r.Source}
	if r.Enrolled {
		o.Result = httpapi.PhotoEnrolled
		o.Box = []int{r.Box.Min.X, r.Box.Min.Y, r.Box.Max.X, r.Box.Max.Y}
		return o
	}
	switch {
	case errors.Is(r.Err, match.ErrNoFace):
		o.Result = httpapi.PhotoNoFace
	case errors.Is(r.Err, match.ErrSeveralFaces):
		o.Result = httpapi.PhotoSeveralFaces
	case errors.Is(r.Err, match.ErrUnreadable):
		o.Result = httpapi.PhotoUnreadable
	case errors.Is(r.Err, match.ErrTooLarge):
		o.Result = httpapi.PhotoTooLarge
	default:
		o.Result = httpapi.PhotoRejected
	}
	if r.Err != nil {
		o.Error = r.Err.Error()
	}
	return o
}

// Remove implements httpapi.Gallery.
func (a *GalleryAPI) Remove(ctx context.Context, name string) error {
	err := a.g.Remove(ctx, name)
	if errors.Is(err, match.ErrNotFound) {
		return fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return err
}

// PhotoJPEG returns the person's first enrolled photo.
func (a *GalleryAPI) PhotoJPEG(ctx context.Context, name string) ([]byte, error) {
	b, err := a.g.Photo(ctx, name)
	if errors.Is(err, match.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return b, err
}

// SetWatchlist implements httpapi.Gallery.
func (a *GalleryAPI) SetWatchlist(ctx context.Context, name string, on bool) error {
	err := a.g.SetWatchlist(ctx, name, on)
	if errors.Is(err, match.ErrNotFound) {
		return fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return err
}

// SetOverride implements httpapi.Gallery.
func (a *GalleryAPI) SetOverride(ctx context.Context, name string, threshold, margin float64) error {
	o := match.Offset{Threshold: threshold, Margin: margin}
	if err := o.Check(); err != nil {
		return fmt.Errorf("%w: %w", httpapi.ErrInvalid, err)
	}
	err := a.g.SetOffset(ctx, name, &o)
	if errors.Is(err, match.ErrNotFound) {
		return fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return err
}

// Feedback implements httpapi.Gallery: the SR face (decoded within the
// gallery's pixel bound) becomes a template of the person.
func (a *GalleryAPI) Feedback(ctx context.Context, person, verdict string, srJPEG []byte, scale int, source string) (int64, error) {
	v, err := match.ParseVerdict(verdict)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", httpapi.ErrInvalid, err)
	}
	img, _, err := faceimg.Decode(srJPEG, faceimg.DefaultMaxPixels)
	if err != nil {
		return 0, fmt.Errorf("%w: the hit's SR face: %w", httpapi.ErrInvalid, err)
	}
	id, err := a.g.AddFeedback(ctx, person, v, match.Sighting{Face: img, Scale: scale, Source: source})
	if errors.Is(err, match.ErrNotFound) {
		return 0, fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return id, err
}
