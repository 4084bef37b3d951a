package face

import (
	"time"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// Where a shot's guidance labels came from (Attribute.Source, Shot.LabelSource).
const (
	LabelsOperator  = "operator"  // forced by the installer/operator for the camera
	LabelsPredicted = "predicted" // from the LR attribute predictor, above the abstain threshold
	LabelsNone      = "none"      // guidance off (policy off, or nothing confident)
)

// Shot is one probe after super-resolution: what the match stage embeds.
type Shot struct {
	Probe *Probe
	// SR is the super-resolved face, HR x HR planar RGB in [0, 1].
	SR *faceimg.Planar
	// Samples are more posterior SR samples of the same probe (other noise,
	// match.visit.samples > 1), the same size as SR; the match stage fuses
	// their descriptors with SR's into the shot's one. Hits keep SR only.
	Samples []*faceimg.Planar
	// Labels are the guidance labels the sampler used, per guidance
	// attribute in the guidance model's order (-1: abstained).
	Labels []int
	// Attributes are the same attributes as a hit reports them: the label
	// only where it guided SR, the predictor's probability where it ran.
	Attributes []Attribute
	// LabelSource is where Labels came from (LabelsOperator, ...).
	LabelSource string
	// Run describes the SR run as a hit reports it.
	Run SR
	// Elapsed is the wall time of the SR batch the shot was in.
	Elapsed time.Duration
}
