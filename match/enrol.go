package match

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"unicode"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// FaceFinder finds the faces in a photo (the detect package's detector, wired
// by the daemon). Boxes are in the image's coordinates.
type FaceFinder interface {
	Find(ctx context.Context, img image.Image) ([]image.Rectangle, error)
}

// FixedBox is a FaceFinder for photos whose framing is known: it returns the
// box (clipped to the image), or the whole image when the box is empty. Use it
// for pre-cropped face images (SR outputs, CelebA aligned images with the box
// columns 29..148, rows 56..175).
type FixedBox image.Rectangle

var _ FaceFinder = FixedBox{}

// Find implements FaceFinder.
func (f FixedBox) Find(_ context.Context, img image.Image) ([]image.Rectangle, error) {
	r := image.Rectangle(f)
	if r.Empty() {
		return []image.Rectangle{img.Bounds()}, nil
	}
	r = r.Intersect(img.Bounds())
	if r.Empty() {
		return nil, nil
	}
	return []image.Rectangle{r}, nil
}

// Photo is one enrolment photo: encoded bytes (JPEG, PNG or GIF) and where it
// came from (a file name; stored with the photo and used in results).
type Photo struct {
	Source string
	Data   []byte
}

// PhotosFromFiles reads photo files (regular files of at most
// faceimg.MaxFileBytes); a folder among paths stands for the image files in
// it (expandPhotos).
func PhotosFromFiles(paths []string) ([]Photo, error) {
	files, err := expandPhotos(paths)
	if err != nil {
		return nil, err
	}
	out := make([]Photo, 0, len(files))
	for _, p := range files {
		b, err := faceimg.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("photo %w", err)
		}
		out = append(out, Photo{Source: filepath.Base(p), Data: b})
	}
	return out, nil
}

// PhotoResult is the outcome for one photo of Add.
type PhotoResult struct {
	Source   string
	Enrolled bool
	// PersonID and ImageID of the stored rows (when enrolled).
	PersonID, ImageID int64
	// Box is the face found in the photo.
	Box image.Rectangle
	// Err says why the photo was rejected; it wraps ErrUnreadable,
	// ErrTooLarge, ErrNoFace or ErrSeveralFaces (or the finder's or
	// embedder's error for this photo).
	Err error
}

// PhotoSide is the longest side, in pixels, of the photos the gallery works
// on: enrolment, import and search photos are reduced to it right after
// decoding (a box filter, faceimg.Shrink), and enrolled photos are stored at
// that size. Faces need no more: the embedder's input is 150 px, and face
// detection over a full-size photo costs time in proportion to its pixels
// (a minute for 40 megapixels) and memory kept by the detector.
const PhotoSide = 1024

// decoded is a photo ready for the face finder and the embedder.
type decoded struct {
	img    image.Image // at most PhotoSide on either side
	stored []byte      // the JPEG to store, of img's pixels
	file   image.Rectangle
}

// fromFile maps a rectangle in the file's pixels to img's.
func (d decoded) fromFile(r image.Rectangle) image.Rectangle {
	return scaleRect(r, d.file, d.img.Bounds())
}

// toFile maps a rectangle in img to the file's pixels.
func (d decoded) toFile(r image.Rectangle) image.Rectangle {
	return scaleRect(r, d.img.Bounds(), d.file)
}

// scaleRect maps r from the frame from to the frame to (same picture at
// another size), rounding outwards.
func scaleRect(r, from, to image.Rectangle) image.Rectangle {
	if from == to || from.Empty() {
		return r
	}
	sx := float64(to.Dx()) / float64(from.Dx())
	sy := float64(to.Dy()) / float64(from.Dy())
	return image.Rect(
		to.Min.X+int(math.Floor(float64(r.Min.X-from.Min.X)*sx)), to.Min.Y+int(math.Floor(float64(r.Min.Y-from.Min.Y)*sy)),
		to.Min.X+int(math.Ceil(float64(r.Max.X-from.Min.X)*sx)), to.Min.Y+int(math.Ceil(float64(r.Max.Y-from.Min.Y)*sy)))
}

// bigDecode is the number of pixels decoded, by one photo or by several since
// memory was last handed back, above which the memory of the decodes is
// handed back to the operating system as soon as no decode is in flight: Go's
// background scavenger would keep hundreds of megabytes for minutes (20
// parallel 4-megapixel uploads left 650 MB of RSS, 300 MB of it heap, when
// only single photos over this size were followed by a release).
const bigDecode = 8_000_000

// decodePhoto is decodePhotoBytes within the gallery's decode budget: the
// pixels of the photos being decoded at the same time never exceed maxP, so
// parallel enrolments wait rather than each allocate a full-size picture.
func (g *Gallery) decodePhoto(ctx context.Context, data []byte) (decoded, error) {
	weight := int64(1)
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		weight = min(max(int64(cfg.Width)*int64(cfg.Height), 1), int64(g.maxP))
	}
	if err := g.decodeBudget.Acquire(ctx, weight); err != nil {
		return decoded{}, err
	}
	g.decodes.start()
	d, err := decodePhotoBytes(data, g.maxP)
	g.decodeBudget.Release(weight)
	if g.decodes.done(weight) {
		debug.FreeOSMemory()
	}
	return d, err
}

// decodeCount tells decodePhoto when to hand memory back: when the last decode
// in flight ends and more than bigDecode pixels were decoded since the last
// time.
type decodeCount struct {
	mu sync.Mutex
	// inFlight: decodes started and not done; pixels: decoded since the
	// last release
	inFlight int
	pixels   int64
}

func (c *decodeCount) start() {
	c.mu.Lock()
	c.inFlight++
	c.mu.Unlock()
}

// done ends a decode of pixels pixels; true: hand the memory back now.
func (c *decodeCount) done(pixels int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	c.pixels += pixels
	if c.inFlight > 0 || c.pixels <= bigDecode {
		return false
	}
	c.pixels = 0
	return true
}

// decodePhotoBytes decodes a photo after checking its size (faceimg.Decode),
// reduces it to PhotoSide and returns it with the JPEG bytes to store: the
// original file when it is a JPEG that needed no reduction, else a
// re-encoding. Errors wrap ErrUnreadable or ErrTooLarge.
func decodePhotoBytes(data []byte, maxPixels int) (decoded, error) {
	img, format, err := faceimg.Decode(data, maxPixels)
	if err != nil {
		return decoded{}, err
	}
	d := decoded{file: img.Bounds()}
	small := faceimg.Shrink(img, PhotoSide)
	if format == "jpeg" && small == img {
		d.img, d.stored = img, data
		return d, nil
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: 92}); err != nil {
		return decoded{}, fmt.Errorf("re-encoding as JPEG: %w", err)
	}
	// decode what will be stored, so the descriptor is of the stored pixels
	if d.img, err = jpeg.Decode(bytes.NewReader(buf.Bytes())); err != nil {
		return decoded{}, fmt.Errorf("re-encoding as JPEG: %w", err)
	}
	d.stored = buf.Bytes()
	return d, nil
}

// oneFace asks the finder for the faces and insists on exactly one.
func oneFace(ctx context.Context, f FaceFinder, img image.Image) (image.Rectangle, error) {
	boxes, err := f.Find(ctx, img)
	if err != nil {
		return image.Rectangle{}, fmt.Errorf("face finder: %w", err)
	}
	switch len(boxes) {
	case 0:
		return image.Rectangle{}, ErrNoFace
	case 1:
		return boxes[0], nil
	}
	return image.Rectangle{}, fmt.Errorf("%w: %d (enrolment and search need a photo of one person)", ErrSeveralFaces, len(boxes))
}

// CheckName validates a person's name: 1-200 characters after trimming
// spaces, no control characters.
func CheckName(name string) error {
	if strings.TrimSpace(name) != name || name == "" {
		return fmt.Errorf("person name %q: must be non-empty without leading or trailing spaces", name)
	}
	if n := len([]rune(name)); n > 200 {
		return fmt.Errorf("person name %q: %d characters, at most 200", name[:40]+"...", n)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("person name %q: contains control character %U", name, r)
		}
	}
	return nil
}

// Add enrols photos of the person called name, creating the person if new.
// Each photo must show exactly one face (FaceFinder); each accepted photo is
// stored with its descriptor in its own transaction. Rejected photos are
// reported per photo; the error is for failures of the gallery itself
// (database, embedder, cancellation), after which the photos enrolled so far
// stay enrolled.
func (g *Gallery) Add(ctx context.Context, name string, photos []Photo) ([]PhotoResult, error) {
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("gallery %s: add: %w", g.path, err)
	}
	if g.emb == nil {
		return nil, fmt.Errorf("gallery %s: add: %w", g.path, ErrNoEmbedder)
	}
	if g.find == nil {
		return nil, fmt.Errorf("gallery %s: add: %w", g.path, ErrNoFinder)
	}
	res := make([]PhotoResult, len(photos))
	var faces []EmbedInput
	var which []int
	jpegs := make([][]byte, len(photos))
	for i, p := range photos {
		res[i].Source = p.Source
		d, err := g.decodePhoto(ctx, p.Data)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res[i].Err = err
			continue
		}
		img, stored := d.img, d.stored
		box, err := oneFace(ctx, g.find, img)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res[i].Err = err
			continue
		}
		res[i].Box, jpegs[i] = box, stored
		faces = append(faces, EmbedInput{Image: img, Box: box})
		which = append(which, i)
	}
	embs, err := g.embedEach(ctx, faces)
	if err != nil {
		return res, fmt.Errorf("gallery %s: add %q: %w", g.path, name, err)
	}
	for k, i := range which {
		if embs[k].err != nil {
			res[i].Err = embs[k].err
			continue
		}
		pid, iid, err := g.enrolOne(ctx, name, enrolment{source: photos[i].Source, jpeg: jpegs[i], box: res[i].Box, emb: embs[k].Embedding})
		if err != nil {
			return res, fmt.Errorf("gallery %s: add %q, photo %s: %w", g.path, name, photos[i].Source, err)
		}
		res[i].Enrolled, res[i].PersonID, res[i].ImageID = true, pid, iid
	}
	return res, nil
}

type embedResult struct {
	Embedding
	err error
}

// embedEach embeds the faces in one batch; if the batch fails, face by face,
// so that one bad face rejects only its photo. Cancellation fails the call.
func (g *Gallery) embedEach(ctx context.Context, faces []EmbedInput) ([]embedResult, error) {
	out := make([]embedResult, len(faces))
	if len(faces) == 0 {
		return out, nil
	}
	embs, err := embedTemplates(ctx, g.emb, faces)
	if err == nil {
		for i := range embs {
			out[i].Embedding = embs[i]
		}
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for i := range faces {
		e, err := embedTemplates(ctx, g.emb, faces[i:i+1])
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			out[i].err = fmt.Errorf("face embedder: %w", err)
			continue
		}
		out[i].Embedding = e[0]
	}
	return out, nil
}

// expandPhotos replaces folders by the image files in them (.jpg, .jpeg,
// .png, .gif), sorted by name.
func expandPhotos(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".jpg", ".jpeg", ".png", ".gif":
				out = append(out, filepath.Join(a, e.Name()))
			}
		}
	}
	return out, nil
}
