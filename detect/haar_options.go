package detect

import (
	"fmt"
	"strings"
)

// DefaultHaarCascade is where Debian's opencv-data puts the frontal face cascade.
const DefaultHaarCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

// HaarOptions configures NewHaar. Zero values take the defaults.
type HaarOptions struct {
	// Cascade XML file (default DefaultHaarCascade).
	Cascade string
	Search
	// ScaleFactor between cascade scales (default 1.1) and MinNeighbors
	// (default 4), OpenCV's detectMultiScale parameters.
	ScaleFactor  float64
	MinNeighbors int
	// WindowPx is the cascade's window (24 for the frontal face cascades).
	WindowPx float64
	// MaxUpscale caps the enlargement for small faces (default 3).
	MaxUpscale float64
}

func (o *HaarOptions) setDefaults() {
	if o.Cascade == "" {
		o.Cascade = DefaultHaarCascade
	}
	o.Search.setDefaults()
	if o.ScaleFactor == 0 {
		o.ScaleFactor = 1.1
	}
	if o.MinNeighbors == 0 {
		o.MinNeighbors = 4
	}
	if o.WindowPx == 0 {
		o.WindowPx = 24
	}
	if o.MaxUpscale == 0 {
		o.MaxUpscale = 3
	}
}

func (o *HaarOptions) validate() error {
	var probs []string
	if err := o.Search.validate(); err != nil {
		probs = append(probs, strings.TrimPrefix(err.Error(), "detect: "))
	}
	if o.ScaleFactor <= 1 || o.ScaleFactor > 2 {
		probs = append(probs, fmt.Sprintf("scale factor %g: want (1, 2]", o.ScaleFactor))
	}
	if o.MinNeighbors < 0 {
		probs = append(probs, fmt.Sprintf("min neighbors %d: must not be negative", o.MinNeighbors))
	}
	if o.WindowPx < 8 {
		probs = append(probs, fmt.Sprintf("window %g px: want at least 8", o.WindowPx))
	}
	if o.MaxUpscale < 1 || o.MaxUpscale > 8 {
		probs = append(probs, fmt.Sprintf("max upscale %g: want 1..8", o.MaxUpscale))
	}
	if len(probs) > 0 {
		return fmt.Errorf("haar: %s", joinProbs(probs))
	}
	return nil
}
