package match

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ExportWarning is written into every export's manifest and logged: the
// export is plaintext biometric data.
const ExportWarning = "This export contains face photographs of identifiable people (biometric personal data) " +
	"in plain, unencrypted JPEG files. Store it encrypted, restrict access, and delete it when no longer needed."

const (
	exportFormat  = "srdgd-gallery-export"
	exportVersion = 1
	manifestName  = "manifest.json"
	maxImportFile = 64 << 20 // bytes per file read from an export
)

// Manifest is an export's manifest.json. Descriptors are not exported: an
// import computes them with its own embedder, so exports survive embedder
// upgrades.
type Manifest struct {
	Format   string           `json:"format"`
	Version  int              `json:"version"`
	Exported time.Time        `json:"exported"`
	Warning  string           `json:"warning"`
	People   []ManifestPerson `json:"people"`
}

// ManifestPerson is one person of an export.
type ManifestPerson struct {
	Name      string          `json:"name"`
	Watchlist bool            `json:"watchlist"`
	Male      *bool           `json:"male"`
	Glasses   *bool           `json:"glasses"`
	NoBeard   *bool           `json:"no_beard"`
	Created   string          `json:"created"`
	Images    []ManifestImage `json:"images"`
}

// ManifestImage is one photo of an export; Box is the face [x0, y0, x1, y1]
// in the photo, absent if unknown.
type ManifestImage struct {
	File    string `json:"file"`
	Source  string `json:"source"`
	Created string `json:"created"`
	Box     []int  `json:"box,omitempty"`
}

// exportSink receives the export's files.
type exportSink interface {
	file(name string, data []byte) error
}

type dirSink string

func (d dirSink) file(name string, data []byte) error {
	p := filepath.Join(string(d), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o600)
}

type tarSink struct{ w *tar.Writer }

func (t tarSink) file(name string, data []byte) error {
	if err := t.w.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := t.w.Write(data)
	return err
}

// ExportReport says what an export wrote;
// its JSON is `srdgd gallery export --json`'s document.
type ExportReport struct {
	People  int    `json:"people"`
	Images  int    `json:"photos"`
	Warning string `json:"warning"`
}

// ExportDir writes every person and photo (plain JPEGs) and manifest.json
// into dir, which must not exist or be empty. Files are 0600.
func (g *Gallery) ExportDir(ctx context.Context, dir string) (*ExportReport, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("gallery %s: export: directory %s is not empty", g.path, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gallery %s: export: %w", g.path, err)
	}
	return g.export(ctx, dirSink(dir))
}

// ExportTar writes the same layout as ExportDir as a tar stream.
func (g *Gallery) ExportTar(ctx context.Context, w io.Writer) (*ExportReport, error) {
	tw := tar.NewWriter(w)
	rep, err := g.export(ctx, tarSink{tw})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("gallery %s: export: %w", g.path, err)
	}
	return rep, nil
}

func (g *Gallery) export(ctx context.Context, sink exportSink) (*ExportReport, error) {
	people, err := g.List(ctx)
	if err != nil {
		return nil, err
	}
	m := Manifest{Format: exportFormat, Version: exportVersion, Exported: time.Now().UTC(), Warning: ExportWarning}
	pos := map[int64]int{}
	for _, p := range people {
		pos[p.ID] = len(m.People)
		m.People = append(m.People, ManifestPerson{
			Name: p.Name, Watchlist: p.Watchlist, Male: p.Attributes.Male, Glasses: p.Attributes.Glasses,
			NoBeard: p.Attributes.NoBeard, Created: p.Created.UTC().Format(timeLayout),
		})
	}
	rep := &ExportReport{People: len(people), Warning: ExportWarning}
	err = g.images(ctx, "", nil, func(s storedImage) error {
		i, ok := pos[s.personID]
		if !ok {
			return nil // enrolled after the list was taken
		}
		name := fmt.Sprintf("images/%d/%d.jpg", s.personID, s.id)
		if err := sink.file(name, s.jpeg); err != nil {
			return fmt.Errorf("gallery %s: export %s: %w", g.path, name, err)
		}
		mi := ManifestImage{File: name, Source: s.source, Created: s.created}
		if !s.box.Empty() {
			mi.Box = []int{s.box.Min.X, s.box.Min.Y, s.box.Max.X, s.box.Max.Y}
		}
		m.People[i].Images = append(m.People[i].Images, mi)
		rep.Images++
		return nil
	})
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	if err := sink.file(manifestName, append(b, '\n')); err != nil {
		return nil, fmt.Errorf("gallery %s: export manifest: %w", g.path, err)
	}
	g.log.Warn("gallery exported: the export holds unencrypted biometric data", "path", g.path,
		"people", rep.People, "images", rep.Images)
	return rep, nil
}

// ImportReport says what an import did; per-photo rejections are in Photos.
type ImportReport struct {
	People, Created, Images int
	Photos                  []PhotoResult // rejected ones only
}

// ImportDir reads an export written by ExportDir.
func (g *Gallery) ImportDir(ctx context.Context, dir string) (*ImportReport, error) {
	read := func(name string) ([]byte, error) {
		if !fsNameOK(name) {
			return nil, fmt.Errorf("file name %q leaves the export", name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if st.Size() > maxImportFile {
			return nil, fmt.Errorf("%s: %d bytes, more than %d", name, st.Size(), maxImportFile)
		}
		return os.ReadFile(p)
	}
	return g.importFrom(ctx, dir, read)
}

// ImportTar reads an export written by ExportTar.
func (g *Gallery) ImportTar(ctx context.Context, r io.Reader) (*ImportReport, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gallery %s: import: tar: %w", g.path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxImportFile {
			return nil, fmt.Errorf("gallery %s: import: tar member %s: %d bytes, more than %d", g.path, h.Name, h.Size, maxImportFile)
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, io.LimitReader(tr, maxImportFile)); err != nil {
			return nil, fmt.Errorf("gallery %s: import: tar member %s: %w", g.path, h.Name, err)
		}
		files[path.Clean(h.Name)] = b.Bytes()
	}
	read := func(name string) ([]byte, error) {
		b, ok := files[path.Clean(name)]
		if !ok {
			return nil, fmt.Errorf("%s: not in the tar", name)
		}
		return b, nil
	}
	return g.importFrom(ctx, "tar", read)
}

func fsNameOK(name string) bool {
	c := path.Clean(name)
	return c != "." && !path.IsAbs(c) && c != ".." && !strings.HasPrefix(c, "../")
}

// importFrom enrols every person and photo of a manifest. Existing people (by
// name, compared as normName does) get the photos added and keep their own watchlist flag and
// attributes; new people take them from the manifest. Descriptors are
// computed with the gallery's embedder, on the stored face box (or the
// FaceFinder's when the manifest has none).
func (g *Gallery) importFrom(ctx context.Context, from string, read func(string) ([]byte, error)) (*ImportReport, error) {
	if g.emb == nil {
		return nil, fmt.Errorf("gallery %s: import: %w", g.path, ErrNoEmbedder)
	}
	raw, err := read(manifestName)
	if err != nil {
		return nil, fmt.Errorf("gallery %s: import from %s: %w", g.path, from, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("gallery %s: import from %s: %s: %w", g.path, from, manifestName, err)
	}
	if m.Format != exportFormat || m.Version != exportVersion {
		return nil, fmt.Errorf("gallery %s: import from %s: format %q version %d, want %q version %d",
			g.path, from, m.Format, m.Version, exportFormat, exportVersion)
	}
	// by nameKey: a manifest name that differs from an enrolled one only in
	// case or Unicode form is that person
	existing := map[string]bool{}
	people, err := g.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range people {
		existing[string(g.nameKey(p.Name))] = true
	}
	rep := &ImportReport{}
	for _, mp := range m.People {
		if err := CheckName(mp.Name); err != nil {
			return rep, fmt.Errorf("gallery %s: import from %s: %w", g.path, from, err)
		}
		var faces []EmbedInput
		var pending []enrolment
		for _, mi := range mp.Images {
			f, e, err := g.importPhoto(ctx, mi, read)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			if err != nil {
				rep.Photos = append(rep.Photos, PhotoResult{Source: mi.File, Err: err})
				continue
			}
			faces, pending = append(faces, f), append(pending, e)
		}
		embs, err := g.embedEach(ctx, faces)
		if err != nil {
			return rep, fmt.Errorf("gallery %s: import %q: %w", g.path, mp.Name, err)
		}
		enrolled := 0
		for i, e := range pending {
			if embs[i].err != nil {
				rep.Photos = append(rep.Photos, PhotoResult{Source: e.source, Err: embs[i].err})
				continue
			}
			e.emb = embs[i].Embedding
			if _, _, err := g.enrolOne(ctx, mp.Name, e); err != nil {
				return rep, fmt.Errorf("gallery %s: import %q, photo %s: %w", g.path, mp.Name, e.source, err)
			}
			enrolled++
		}
		rep.Images += enrolled
		if enrolled > 0 {
			rep.People++
			if nk := string(g.nameKey(mp.Name)); !existing[nk] {
				rep.Created++
				existing[nk] = true
				if err := g.SetAttributes(ctx, mp.Name, Attributes{mp.Male, mp.Glasses, mp.NoBeard}); err != nil {
					return rep, err
				}
				if mp.Watchlist {
					if err := g.SetWatchlist(ctx, mp.Name, true); err != nil {
						return rep, err
					}
				}
			}
		}
	}
	return rep, nil
}

// importPhoto reads one photo of a manifest and finds its face: the
// manifest's box (in the file's pixels), else the face finder's one face.
func (g *Gallery) importPhoto(ctx context.Context, mi ManifestImage, read func(string) ([]byte, error)) (EmbedInput, enrolment, error) {
	data, err := read(mi.File)
	if err != nil {
		return EmbedInput{}, enrolment{}, err
	}
	d, err := g.decodePhoto(ctx, data)
	if err != nil {
		return EmbedInput{}, enrolment{}, err
	}
	var box image.Rectangle
	switch {
	case len(mi.Box) == 4:
		box = image.Rect(mi.Box[0], mi.Box[1], mi.Box[2], mi.Box[3])
		if box.Intersect(d.file).Empty() {
			return EmbedInput{}, enrolment{}, fmt.Errorf("face box %v outside the %v photo", box, d.file)
		}
		box = d.fromFile(box)
	case len(mi.Box) == 0 && g.find != nil:
		if box, err = oneFace(ctx, g.find, d.img); err != nil {
			return EmbedInput{}, enrolment{}, err
		}
	case len(mi.Box) == 0:
		return EmbedInput{}, enrolment{}, fmt.Errorf("no face box in the manifest and %w", ErrNoFinder)
	default:
		return EmbedInput{}, enrolment{}, fmt.Errorf("face box %v: want [x0, y0, x1, y1]", mi.Box)
	}
	return EmbedInput{Image: d.img, Box: box}, enrolment{source: mi.Source, jpeg: d.stored, box: box}, nil
}

// ExportTo exports to target: a new tar file when its name ends in .tar
// (an existing file is never overwritten), else a folder (ExportDir).
func (g *Gallery) ExportTo(ctx context.Context, target string) (*ExportReport, error) {
	if !strings.HasSuffix(target, ".tar") {
		return g.ExportDir(ctx, target)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	rep, err := g.ExportTar(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return rep, err
}

// ImportFrom imports an export: a tar file when its name ends in .tar, else
// a folder (ImportDir).
func (g *Gallery) ImportFrom(ctx context.Context, source string) (*ImportReport, error) {
	if !strings.HasSuffix(source, ".tar") {
		return g.ImportDir(ctx, source)
	}
	f, err := os.Open(source)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return g.ImportTar(ctx, f)
}
