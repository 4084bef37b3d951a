package eval

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/celeba"
	"github.com/srdgd/srdgd/internal/faceimg"
	"github.com/srdgd/srdgd/internal/resample"
)

// HR is the size of the HR face every method is scored at.
const HR = 128

// Set describes an evaluation dataset (JSON): gallery images with their
// identity, probe images with their identity and optionally the attributes an
// operator would supply for guided SR (name -> 0 or 1, e.g. "male": 1).
// Every probe identity must be in the gallery (closed-set identification).
// Paths are relative to Root (default: the folder of the JSON file). Box is
// the face [x0, y0, x1, y1] (exclusive max); an image's own box overrides the
// set's, and no box means the whole (square) image is the face. The face is
// cropped from the 8-bit image and resized to 128x128 with bicubic
// (Keys, a = -0.5) and rounded to 8 bits, as models/data/crop.py does.
type Set struct {
	Root    string  `json:"root,omitempty"`
	Box     []int   `json:"box,omitempty"`
	Gallery []Image `json:"gallery"`
	Probes  []Image `json:"probes"`
}

// Image is one image of an Set. Path identifies the image (and a
// probe's cached results): it must be unique within its list.
type Image struct {
	Path       string         `json:"path"`
	Identity   string         `json:"identity"`
	Box        []int          `json:"box,omitempty"`
	Attributes map[string]int `json:"attributes,omitempty"`
}

// LoadSet reads and checks a dataset description.
func LoadSet(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval set: %w", err)
	}
	var s Set
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("eval set %s: %w", path, err)
	}
	if s.Root == "" {
		s.Root = filepath.Dir(path)
	} else if !filepath.IsAbs(s.Root) {
		s.Root = filepath.Join(filepath.Dir(path), s.Root)
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("eval set %s: %w", path, err)
	}
	return &s, nil
}

// Check validates the set: non-empty lists, unique paths, identities given,
// boxes of four values, attributes 0 or 1, every probe identity in the
// gallery.
func (s *Set) Check() error {
	if len(s.Gallery) == 0 || len(s.Probes) == 0 {
		return fmt.Errorf("%d gallery images and %d probes, want both non-empty", len(s.Gallery), len(s.Probes))
	}
	if s.Box != nil && len(s.Box) != 4 {
		return fmt.Errorf("box %v: want [x0, y0, x1, y1]", s.Box)
	}
	ids := map[string]bool{}
	for _, list := range []struct {
		name string
		imgs []Image
	}{{"gallery", s.Gallery}, {"probes", s.Probes}} {
		seen := map[string]bool{}
		for i, im := range list.imgs {
			switch {
			case im.Path == "":
				return fmt.Errorf("%s[%d]: empty path", list.name, i)
			case seen[im.Path]:
				return fmt.Errorf("%s[%d]: path %q listed twice", list.name, i, im.Path)
			case im.Identity == "":
				return fmt.Errorf("%s[%d] %q: empty identity", list.name, i, im.Path)
			case im.Box != nil && len(im.Box) != 4:
				return fmt.Errorf("%s[%d] %q: box %v: want [x0, y0, x1, y1]", list.name, i, im.Path, im.Box)
			}
			for k, v := range im.Attributes {
				if v != 0 && v != 1 {
					return fmt.Errorf("%s[%d] %q: attribute %s=%d, want 0 or 1", list.name, i, im.Path, k, v)
				}
			}
			seen[im.Path] = true
			if list.name == "gallery" {
				ids[im.Identity] = true
			} else if !ids[im.Identity] {
				return fmt.Errorf("probes[%d] %q: identity %q has no gallery image", i, im.Path, im.Identity)
			}
		}
	}
	if len(ids) < 2 {
		return fmt.Errorf("%d gallery identities, want at least 2 (impostor pairs)", len(ids))
	}
	return nil
}

// CelebASet builds a set from the CelebA aligned subset at dir
// (labels.csv, img_align_celeba/): gallery = the first train image (by name)
// of each identity, probes = the images of split ("test", or "val" to select
// thresholds without looking at the test images; by name) whose identity is
// in the gallery, at most limit of them (0 = all), with the attributes male,
// glasses and no_beard from Male, Eyeglasses and No_Beard (-1/1 -> 0/1).
func CelebASet(dir, split string, limit int) (*Set, error) {
	splits := map[string][]string{"test": {"test"}, "val": {"val", "valid", "validation"}}
	want, ok := splits[split]
	if !ok {
		return nil, fmt.Errorf("celeba eval set: split %q, want test or val", split)
	}
	rows, err := celeba.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("celeba eval set: %w", err)
	}
	s := &Set{Root: filepath.Join(dir, celeba.ImageDir),
		Box: []int{celeba.Box.Min.X, celeba.Box.Min.Y, celeba.Box.Max.X, celeba.Box.Max.Y}}
	inGallery := map[string]bool{}
	for _, r := range rows {
		if r.Split == "train" && !inGallery[r.Identity] {
			inGallery[r.Identity] = true
			s.Gallery = append(s.Gallery, Image{Path: r.Image, Identity: r.Identity})
		}
	}
	for _, r := range rows {
		if limit > 0 && len(s.Probes) >= limit {
			break
		}
		if !slices.Contains(want, r.Split) || !inGallery[r.Identity] {
			continue
		}
		attrs := map[string]int{}
		for name, h := range map[string]string{"male": "Male", "glasses": "Eyeglasses", "no_beard": "No_Beard"} {
			if attrs[name], err = r.Attr(h); err != nil {
				return nil, fmt.Errorf("celeba eval set: %w", err)
			}
		}
		s.Probes = append(s.Probes, Image{Path: r.Image, Identity: r.Identity, Attributes: attrs})
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("celeba eval set %s: %w", dir, err)
	}
	return s, nil
}

// LoadFace reads an image of the set and returns its 128x128 face.
func (s *Set) LoadFace(im Image) (*faceimg.Planar, error) {
	img, err := faceimg.Load(filepath.Join(s.Root, im.Path))
	if err != nil {
		return nil, err
	}
	box := im.Box
	if box == nil {
		box = s.Box
	}
	r := img.Bounds()
	if box != nil {
		r = image.Rect(box[0], box[1], box[2], box[3]).Add(img.Bounds().Min)
		if !r.In(img.Bounds()) || r.Empty() {
			return nil, fmt.Errorf("%s: box %v outside the %dx%d image", im.Path, box, img.Bounds().Dx(), img.Bounds().Dy())
		}
	}
	if r.Dx() != r.Dy() {
		return nil, fmt.Errorf("%s: face %dx%d is not square", im.Path, r.Dx(), r.Dy())
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil, fmt.Errorf("%s: %T images cannot be cropped", im.Path, img)
	}
	p := faceimg.FromImage(sub.SubImage(r))
	if p.W == HR {
		return p, nil
	}
	pix, err := resample.Resize(p.Pix, 3, p.H, p.W, HR, HR, resample.Bicubic)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Path, err)
	}
	for i, v := range pix { // Pillow's 8-bit path rounds the result
		pix[i] = float32(math.Round(math.Min(math.Max(float64(v), 0), 1)*255) / 255)
	}
	return &faceimg.Planar{W: HR, H: HR, Pix: pix}, nil
}

// CheckScale accepts the scales the evaluation makes probes at: 8 and 16,
// which the SR models restore, and the direct path's (face.DirectScale: 2
// to 6, 64 to 21 px squares), which only the LR rows read.
func CheckScale(scale int) error {
	if scale == 8 || scale == 16 || face.IsDirectScale(scale) {
		return nil
	}
	return fmt.Errorf("scale %d: want 8 or 16 (SR) or %d to %d (direct path, LR rows only)", scale, face.MinDirectScale, face.MaxDirectScale)
}

// MakeLR makes the LR probe of a 128x128 face at scale 8 (16x16), 16
// (8x8) or a direct scale (128/scale px, CheckScale): antialiased bilinear,
// kept as float (SRDG.md section 2).
func MakeLR(hr *faceimg.Planar, scale int) ([]float32, int, error) {
	if err := CheckScale(scale); err != nil {
		return nil, 0, err
	}
	n := hr.W / scale
	lr, err := resample.Resize(hr.Pix, 3, hr.H, hr.W, n, n, resample.Bilinear)
	return lr, n, err
}
