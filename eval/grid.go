package eval

import (
	"context"
	"fmt"
	"image"
	"image/draw"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// WriteGrid writes a PNG with one row per probe (the first n of set): the LR
// probe (nearest-neighbour upscaled), every method's output but the HR
// reference, the HR face. It returns the column names.
func WriteGrid(ctx context.Context, path string, set *Set, scale, n int, methods func(int) ([]Method, error)) ([]string, error) {
	ms, err := methods(scale)
	if err != nil {
		return nil, err
	}
	probes := set.Probes[:min(n, len(set.Probes))]
	const side, gap = HR, 4
	cols := []string{"LR"}
	for _, m := range ms {
		if m.Name != HRMethod {
			cols = append(cols, m.Name)
		}
	}
	cols = append(cols, "HR")
	img := image.NewRGBA(image.Rect(0, 0, len(cols)*(side+gap)-gap, len(probes)*(side+gap)-gap))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for row, pr := range probes {
		faces, err := gridRow(ctx, set, pr, scale, ms)
		if err != nil {
			return nil, err
		}
		for col, p := range faces {
			r := image.Rect(col*(side+gap), row*(side+gap), col*(side+gap)+side, row*(side+gap)+side)
			draw.Draw(img, r, p.Image(), image.Point{}, draw.Src)
		}
	}
	return cols, faceimg.Save(path, img)
}

// gridRow is one probe's row of the grid: LR (nearest-neighbour), the
// methods' outputs, HR.
func gridRow(ctx context.Context, set *Set, pr Image, scale int, ms []Method) ([]*faceimg.Planar, error) {
	const side = HR
	hr, err := set.LoadFace(pr)
	if err != nil {
		return nil, err
	}
	lr, ln, err := MakeLR(hr, scale)
	if err != nil {
		return nil, err
	}
	up := faceimg.NewPlanar(side, side)
	for c := range 3 {
		for y := range side {
			for x := range side {
				up.Pix[c*side*side+y*side+x] = lr[c*ln*ln+(y*ln/side)*ln+x*ln/side]
			}
		}
	}
	row := []*faceimg.Planar{up}
	for _, m := range ms {
		if m.Name == HRMethod {
			continue
		}
		out, err := m.Restore(ctx, Input{LR: lr, N: ln, Probe: pr})
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", m.Name, pr.Path, err)
		}
		row = append(row, &faceimg.Planar{W: side, H: side, Pix: out})
	}
	return append(row, hr), nil
}
