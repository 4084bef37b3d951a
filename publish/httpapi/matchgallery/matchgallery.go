// Package matchgallery adapts match.Gallery to httpapi.Gallery, mapping
// match's sentinel errors to the API's.
package matchgallery

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// Gallery is an httpapi.Gallery over a match.Gallery.
type Gallery struct {
	g *match.Gallery
}

var _ httpapi.Gallery = (*Gallery)(nil)

// New adapts g; the gallery must have been opened with an embedder and a
// face finder for Enrol to work.
func New(g *match.Gallery) *Gallery { return &Gallery{g: g} }

// People implements httpapi.Gallery.
func (a *Gallery) People(ctx context.Context) ([]httpapi.Person, error) {
	ps, err := a.g.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.Person, 0, len(ps))
	for _, p := range ps {
		out = append(out, httpapi.Person{
			Name: p.Name, Watchlist: p.Watchlist,
			Male: p.Attributes.Male, Glasses: p.Attributes.Glasses, NoBeard: p.Attributes.NoBeard,
			Photos: p.Images, Searchable: p.Searchable, Created: p.Created,
		})
	}
	return out, nil
}

// Enrol implements httpapi.Gallery.
func (a *Gallery) Enrol(ctx context.Context, name string, photos []httpapi.Photo) ([]httpapi.PhotoResult, error) {
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
		out[i] = result(r)
	}
	return out, err
}

func result(r match.PhotoResult) httpapi.PhotoResult {
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
func (a *Gallery) Remove(ctx context.Context, name string) error {
	err := a.g.Remove(ctx, name)
	if errors.Is(err, match.ErrNotFound) {
		return fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	}
	return err
}

// PhotoJPEG implements httpapi.Gallery.
//
// match.Gallery has no call that returns one stored photo yet, so this reads
// the person's first photo out of a full export (ExportTar): correct, but it
// decrypts every photo and logs the export warning. Replace it with
// match.Gallery.Photo(ctx, name) when that exists.
func (a *Gallery) PhotoJPEG(ctx context.Context, name string) ([]byte, error) {
	ps, err := a.g.List(ctx)
	if err != nil {
		return nil, err
	}
	var id int64 = -1
	for _, p := range ps {
		if p.Name == name {
			id = p.ID
		}
	}
	if id < 0 {
		return nil, fmt.Errorf("person %q: %w", name, httpapi.ErrNotFound)
	}
	var buf bytes.Buffer
	if _, err := a.g.ExportTar(ctx, &buf); err != nil {
		return nil, err
	}
	// images/<person id>/<image id>.jpg; the first enrolled is the lowest image id
	prefix := "images/" + strconv.FormatInt(id, 10) + "/"
	var best []byte
	bestID := int64(-1)
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the gallery export: %w", err)
		}
		rest, ok := strings.CutPrefix(h.Name, prefix)
		if !ok {
			continue
		}
		iid, err := strconv.ParseInt(strings.TrimSuffix(rest, ".jpg"), 10, 64)
		if err != nil || (bestID >= 0 && iid >= bestID) {
			continue
		}
		if best, err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("reading the gallery export: %w", err)
		}
		bestID = iid
	}
	if best == nil {
		return nil, fmt.Errorf("person %q has no photo: %w", name, httpapi.ErrNotFound)
	}
	return best, nil
}
