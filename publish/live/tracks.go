package live

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/queue"
	"github.com/srdgd/srdgd/publish"
)

var _ publish.VisitSink = (*Server)(nil)

// Track labels: what a box says about its track's visit.
const (
	// DecisionKnown: the visit's latest event names a person.
	DecisionKnown = "known"
	// DecisionUnknown: the visit's latest event is a decision that names
	// nobody (a name taken back, or the visit ended undecided).
	DecisionUnknown = "unknown"
	// DecisionDeciding: no visit event yet for the track (its shots are
	// still being super-resolved and fused, or none passed the gates).
	DecisionDeciding = "deciding"
)

const (
	// maxLabels bounds the tracks whose visit state one camera remembers;
	// the oldest goes first.
	maxLabels = 512
	// trackQueue is how many analysed frames' boxes wait per camera for
	// the labelling goroutine, trackViewerQueue per viewer for its data
	// channel: boxes are worth nothing late, the oldest are dropped.
	trackQueue       = 8
	trackViewerQueue = 4
	// maxTrackBuffered is how much a data channel may have in flight before
	// a viewer's box messages are dropped (less than for hits: a box
	// message is stale in a fraction of a second).
	maxTrackBuffered = 256 << 10
)

// trackLabel is one track's visit state as the live view knows it.
type trackLabel struct {
	visitID, state string
	decided, known bool
	name           string
	confidence     float64
	shots          int // hits (SR shots) seen for the track
}

// labelBook holds a camera's track labels, fed by its hits and visit events.
type labelBook struct {
	mu    sync.Mutex
	by    map[uint64]*trackLabel
	order []uint64 // insertion order, for the bound
}

func newLabelBook() *labelBook { return &labelBook{by: map[uint64]*trackLabel{}} }

// entry returns the track's label, adding it (and evicting the oldest past
// maxLabels). The caller holds b.mu.
func (b *labelBook) entry(track uint64) *trackLabel {
	if l := b.by[track]; l != nil {
		return l
	}
	if len(b.order) >= maxLabels {
		delete(b.by, b.order[0])
		b.order = b.order[1:]
	}
	l := &trackLabel{}
	b.by[track] = l
	b.order = append(b.order, track)
	return l
}

func (b *labelBook) shot(track uint64) {
	b.mu.Lock()
	b.entry(track).shots++
	b.mu.Unlock()
}

func (b *labelBook) visit(v *face.Visit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.entry(v.TrackID)
	l.visitID, l.state, l.decided = v.ID, v.State, true
	l.known, l.name, l.confidence = v.Decision.Known, v.Decision.Name, v.Decision.Confidence
	if !l.known {
		l.name = ""
	}
	l.shots = max(l.shots, len(v.Shots))
}

// trackOut is one box of a "tracks" message: the tracker's box and its
// visit's current decision.
type trackOut struct {
	face.TrackBox
	// Decision is DecisionKnown (Name and Confidence say who and how
	// sure), DecisionUnknown or DecisionDeciding.
	Decision   string   `json:"decision"`
	Name       string   `json:"name,omitempty"`
	Confidence *float64 `json:"confidence,omitempty"`
	// Shots counts the track's super-resolved shots so far.
	Shots int `json:"shots"`
	// VisitID and VisitState are the visit's id and latest state (new,
	// update, end) once it has been published.
	VisitID    string `json:"visit_id,omitempty"`
	VisitState string `json:"visit_state,omitempty"`
}

// tracksMessage is the JSON sent on the "events" data channel for every
// analysed frame of the viewer's camera: face.TrackBoxes with each box
// labelled, and the frame's RTP timestamp in this viewer's video stream
// (absent before the viewer's video started), by which the page finds the
// video frame the boxes belong to.
type tracksMessage struct {
	Type string `json:"type"` // "tracks"
	face.TrackBoxes
	Tracks       []trackOut `json:"tracks"`
	RTPTimestamp *uint32    `json:"rtp_timestamp,omitempty"`
}

func (b *labelBook) label(tb face.TrackBoxes) tracksMessage {
	m := tracksMessage{Type: "tracks", TrackBoxes: tb, Tracks: make([]trackOut, len(tb.Tracks))}
	m.TrackBoxes.Tracks = nil
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, box := range tb.Tracks {
		o := trackOut{TrackBox: box, Decision: DecisionDeciding}
		if l := b.by[box.TrackID]; l != nil {
			o.Shots = l.shots
			if l.decided {
				o.VisitID, o.VisitState = l.visitID, l.state
				o.Decision = DecisionUnknown
				if l.known {
					c := l.confidence
					o.Decision, o.Name, o.Confidence = DecisionKnown, l.name, &c
				}
			}
		}
		m.Tracks[i] = o
	}
	return m
}

// PublishVisit implements publish.VisitSink: the visit's decision becomes
// the label of its track's boxes. It never blocks.
func (s *Server) PublishVisit(_ context.Context, v *face.Visit) error {
	if v == nil {
		return errors.New("live: publish visit: nil visit")
	}
	if c := s.cams[v.Camera]; c != nil {
		c.labels.visit(v)
	}
	return nil
}

// PublishTracks hands the tracker's boxes of one analysed frame to the
// viewers of its camera (detect.PipelineOptions.OnTracks): it queues them
// and returns at once; when the live side is behind, the oldest boxes are
// dropped. Boxes of a camera without viewers are ignored.
func (s *Server) PublishTracks(tb face.TrackBoxes) {
	c := s.cams[tb.Camera]
	if c == nil || c.viewerCount() == 0 {
		return
	}
	if c.tracks.Push(tb) {
		c.tracksDropped.Add(1)
	}
}

// runTracks labels the camera's queued boxes and sends them to each of its
// viewers until ctx ends.
func (c *camera) runTracks(ctx context.Context) {
	for {
		tb, err := c.tracks.Pop(ctx)
		if err != nil {
			return
		}
		viewers := c.viewerList()
		if len(viewers) == 0 {
			continue
		}
		m := c.labels.label(tb)
		for _, v := range viewers {
			m.RTPTimestamp = nil
			if ts, ok := v.rtpTimestamp(tb.PTS); ok {
				m.RTPTimestamp = &ts
			}
			msg, err := json.Marshal(m)
			if err != nil {
				c.log.Warn("live: encode track boxes", "err", err)
				return
			}
			if v.tracks.Push(msg) {
				c.tracksDropped.Add(1)
			}
		}
	}
}

// rtpTimestamp is the RTP timestamp this viewer's video gives (gave, or will
// give) the picture with presentation time pts; ok is false before its
// video started.
func (v *viewer) rtpTimestamp(pts time.Duration) (uint32, bool) {
	b := v.rtpBase.Load()
	if b == 0 {
		return 0, false
	}
	return uint32(b) + uint32(pts*90000/time.Second), true
}

func newTrackQueues() (*queue.Queue[face.TrackBoxes], *labelBook) {
	return queue.New[face.TrackBoxes](trackQueue), newLabelBook()
}
