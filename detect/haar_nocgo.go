//go:build !cgo

package detect

import "errors"

// Haar needs cgo (OpenCV); this build has none.
type Haar struct{ Detector }

// NewHaar reports that this build has no OpenCV.
func NewHaar(o HaarOptions) (*Haar, error) {
	return nil, errors.New("haar: this build has no cgo, so no OpenCV")
}
