// Package celeba reads the CelebA aligned subset the project evaluates and
// tests on (labels.csv and img_align_celeba/ in one folder): the one reader
// of labels.csv, the face box of the aligned images, and where the shared
// copy lives. The images are research-only data read in place, never copied
// into the repository.
package celeba

import (
	"encoding/csv"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Box is the face box of a CelebA aligned image (178x218): columns 29..148,
// rows 56..175 (SRDG.md section 2, models/data/crop.py).
var Box = image.Rect(29, 56, 149, 176)

// LabelsFile and ImageDir are the names inside a subset folder.
const (
	LabelsFile = "labels.csv"
	ImageDir   = "img_align_celeba"
)

// EnvDir names the environment variable that overrides DefaultDir.
const EnvDir = "SRDGD_TEST_CELEBA"

// Row is one image of labels.csv.
type Row struct {
	Image, Split, Identity string
	// Attrs holds every other column whose values are -1, 0 or 1, as 0 or 1
	// (CelebA writes -1 for "no"), keyed by the column name (e.g. "Male").
	Attrs map[string]int
}

// idColumns are the columns Row names; every other one is an attribute
// unless it holds something other than -1, 0 and 1 (repo_class, say).
var idColumns = []string{"image", "split", "celeba_identity"}

// DefaultDir is $SRDGD_TEST_CELEBA, else the shared copy next to the
// repository (../shared/data/celeba-aligned from its root).
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", "celeba-aligned")
}

// Present says whether dir holds a labels.csv (nil), or why not.
func Present(dir string) error {
	_, err := os.Stat(filepath.Join(dir, LabelsFile))
	return err
}

// ImagePath is the path of an image of the subset at dir.
func ImagePath(dir, name string) string { return filepath.Join(dir, ImageDir, name) }

// Read reads dir/labels.csv, sorted by image name. The columns image, split
// and celeba_identity are required; an attribute column with a value other
// than -1, 0 or 1 in some row is not an attribute and is left out.
func Read(dir string) ([]Row, error) {
	path := filepath.Join(dir, LabelsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("celeba: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("celeba %s: %w", path, err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("celeba %s: no rows", path)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var missing []string
	for _, h := range idColumns {
		if _, ok := col[h]; !ok {
			missing = append(missing, fmt.Sprintf("%q", h))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("celeba %s: no column %s", path, strings.Join(missing, ", "))
	}
	attrs := attributeColumns(recs[0], recs[1:])
	rows := make([]Row, 0, len(recs)-1)
	for _, r := range recs[1:] {
		row := Row{Image: r[col["image"]], Split: r[col["split"]], Identity: r[col["celeba_identity"]],
			Attrs: make(map[string]int, len(attrs))}
		if row.Image == "" || row.Identity == "" {
			return nil, fmt.Errorf("celeba %s: a row with an empty image or identity: %q", path, r)
		}
		for _, i := range attrs {
			if r[i] == "1" { // "-1" and "0" are no
				row.Attrs[recs[0][i]] = 1
			} else {
				row.Attrs[recs[0][i]] = 0
			}
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Image, b.Image) })
	return rows, nil
}

// attributeColumns returns the columns (other than idColumns) whose every
// value is -1, 0 or 1.
func attributeColumns(header []string, rows [][]string) []int {
	var out []int
	for i, h := range header {
		if slices.Contains(idColumns, h) {
			continue
		}
		ok := true
		for _, r := range rows {
			if v := r[i]; v != "-1" && v != "0" && v != "1" {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// Attr returns the row's attribute column h as 0 or 1, or an error naming
// the image and the column when it has none.
func (r Row) Attr(h string) (int, error) {
	v, ok := r.Attrs[h]
	if !ok {
		return 0, fmt.Errorf("%s: no attribute %s (want -1 or 1 in every row)", r.Image, h)
	}
	return v, nil
}

// ErrNotFound is returned by Find when the subset is not there.
var ErrNotFound = errors.New("celeba: aligned subset not found")

// Find returns DefaultDir when it holds the subset, else an error wrapping
// ErrNotFound that says where it looked and how to point elsewhere.
func Find() (string, error) {
	d := DefaultDir()
	if err := Present(d); err != nil {
		return "", fmt.Errorf("%w at %s (set %s): %v", ErrNotFound, d, EnvDir, err)
	}
	return d, nil
}
