package eval

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/srdgd/srdgd/match"
)

// LoadSetFrom reads the dataset of a run: a set description file (path)
// or a CelebA aligned folder's split; limit > 0 keeps the first limit
// probes.
func LoadSetFrom(path, celeba, split string, limit int) (*Set, error) {
	if celeba != "" {
		return CelebASet(celeba, split, limit)
	}
	set, err := LoadSet(path)
	if err == nil && limit > 0 && len(set.Probes) > limit {
		set.Probes = set.Probes[:limit]
	}
	return set, err
}

// OpenEmbedder opens face_embedder.onnx (with face_landmarks68.onnx from
// its folder) found by m.Models, on m's runtime and session options.
func (m *MethodSet) OpenEmbedder() (*match.Embedder, error) {
	return m.OpenEmbedderFile("face_embedder.onnx")
}

// OpenEmbedderFile opens the embedder file name (found by m.Models; a path
// when it has a folder) with face_landmarks68.onnx from m.Models.
func (m *MethodSet) OpenEmbedderFile(name string) (*match.Embedder, error) {
	path := name
	if filepath.Base(name) == name {
		var err error
		if path, err = m.Models.File(m.Models.DirKey, "", name); err != nil {
			return nil, err
		}
	}
	lmk, err := m.Models.File(m.Models.DirKey, "", "face_landmarks68.onnx")
	if err != nil {
		return nil, err
	}
	return match.NewEmbedder(match.EmbedderOptions{Runtime: m.Runtime, Session: m.Session,
		EmbedderPath: path, LandmarksPath: lmk})
}

// Outputs are what WriteAll writes: the results folder (WriteOutputs), with
// Grid > 0 grid_x<scale>.png of the first Grid probes per scale, and with
// Calibrate the decision calibration of the run (UpdateCalibration, its
// entries said to come from CalibrationSource). Log hears of each file.
type Outputs struct {
	Dir                          string
	Scales                       []int
	Grid                         int
	Calibrate, CalibrationSource string
	Log                          io.Writer
}

// WriteAll writes the outputs of the report rep of a run of m's methods.
func (m *MethodSet) WriteAll(ctx context.Context, rep *Report, o Outputs) error {
	if err := WriteOutputs(o.Dir, rep); err != nil {
		return err
	}
	for _, sc := range o.Scales {
		if o.Grid <= 0 {
			break
		}
		path := filepath.Join(o.Dir, fmt.Sprintf("grid_x%d.png", sc))
		cols, err := WriteGrid(ctx, path, m.Set, sc, o.Grid, m.Methods)
		if err != nil {
			return fmt.Errorf("grid: %w", err)
		}
		fmt.Fprintf(o.Log, "srdgd eval: wrote %s (columns: %s)\n", path, strings.Join(cols, " | "))
	}
	if o.Calibrate == "" {
		return nil
	}
	n, err := UpdateCalibration(o.Calibrate, rep, o.CalibrationSource)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "srdgd eval: wrote %s (%d entries)\n", o.Calibrate, n)
	return nil
}
