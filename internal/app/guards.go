package app

import (
	"github.com/srdgd/srdgd/ingest"
	"github.com/srdgd/srdgd/publish/live"
)

// The stages declare what they need of their neighbours; these check that
// the neighbours have it, where both are known.
var _ live.Source = (*ingest.Camera)(nil)
