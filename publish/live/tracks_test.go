package live

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/testutil"
)

type tracksSeen struct {
	Type         string  `json:"type"`
	Camera       string  `json:"camera"`
	Seq          uint64  `json:"seq"`
	PTS          int64   `json:"pts_ns"`
	FrameWidth   int     `json:"frame_width"`
	RTPTimestamp *uint32 `json:"rtp_timestamp"`
	Tracks       []struct {
		TrackID    uint64 `json:"track_id"`
		Box        face.Box
		Coasting   bool     `json:"coasting"`
		Decision   string   `json:"decision"`
		Name       string   `json:"name"`
		Confidence *float64 `json:"confidence"`
		Shots      int      `json:"shots"`
		VisitID    string   `json:"visit_id"`
		VisitState string   `json:"visit_state"`
	} `json:"tracks"`
}

// A viewer gets, for every analysed frame of its camera, the tracker's boxes
// with each track's visit decision (a named visit: known with its name and
// confidence; a visit that names nobody: unknown; no visit event yet:
// deciding, with the shots so far) and the RTP timestamp its own video
// stream gave that frame: the timestamp of the packets of the access unit
// with the frame's PTS. Boxes of another camera do not reach it.
func TestTrackBoxesReachTheViewerWithLabels(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	cam := startCamera(t, "front", h264)
	back := startCamera(t, "back", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam, "back": back}})
	// the camera's own access units, to learn PTS values the viewer is sent
	aus := cam.SubscribeAccessUnits(256)
	defer cam.UnsubscribeAccessUnits(aus)

	c := newWHEPClient(t, clientOptions{})
	connect(t, ctx, ls, c, "front")
	c.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
	<-c.dcOpen
	firstUnit(t, ctx, c.packets)

	// labels: track 7 named by its visit, 8 with a shot but no visit event,
	// 9 decided unknown, 10 nothing at all
	named := &face.Visit{ID: face.NewID(time.Now()), Camera: "front", TrackID: 7, State: face.VisitNew, Rev: 1,
		Decision: face.Decision{Known: true, Name: "Ada", Confidence: 0.87}, Shots: []face.ShotRef{{HitID: "h1"}, {HitID: "h2"}}}
	unknown := &face.Visit{ID: face.NewID(time.Now()), Camera: "front", TrackID: 9, State: face.VisitEnd, Rev: 2,
		Decision: face.Decision{Known: false, Name: "", Confidence: 0.2}, Shots: []face.ShotRef{{HitID: "h3"}}}
	for _, v := range []*face.Visit{named, unknown, {ID: "x", Camera: "back", TrackID: 8, Decision: face.Decision{Known: true, Name: "Eve"}}} {
		if err := ls.srv.PublishVisit(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	h := testHit("front", "hit-8")
	h.TrackID = 8
	if err := ls.srv.Publish(ctx, h); err != nil {
		t.Fatal(err)
	}
	// a PTS the viewer is sent: the next access unit to reach the camera's
	// subscribers, now that the viewer's video runs (those queued before
	// may be older than the viewer's first key unit)
	for {
		if _, ok, _ := aus.TryPop(); !ok {
			break
		}
	}
	au, err := aus.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	boxes := []face.TrackBox{{TrackID: 7, Box: face.Box{X: 10, Y: 20, W: 16, H: 16}}, {TrackID: 8, Box: face.Box{X: 40, Y: 20, W: 14, H: 14}},
		{TrackID: 9, Box: face.Box{X: 70, Y: 20, W: 12, H: 12}, Coasting: true}, {TrackID: 10, Box: face.Box{X: 90, Y: 30, W: 12, H: 12}}}
	ls.srv.PublishTracks(face.TrackBoxes{Camera: "back", Seq: 1, PTS: au.PTS, FrameW: 320, FrameH: 240, Tracks: boxes[:1]})
	ls.srv.PublishTracks(face.TrackBoxes{Camera: "front", Seq: 42, PTS: au.PTS, FrameW: 320, FrameH: 240, Tracks: boxes})
	var m tracksSeen
	for m.Type != "tracks" {
		select {
		case s := <-c.messages:
			if strings.Contains(s, `"type":"tracks"`) {
				decodeJSON(t, s, &m)
			}
		case <-ctx.Done():
			t.Fatal("no tracks message on the events data channel")
		}
	}
	if m.Camera != "front" || m.Seq != 42 || m.PTS != int64(au.PTS) || m.FrameWidth != 320 || len(m.Tracks) != 4 || m.RTPTimestamp == nil {
		t.Fatalf("tracks message %+v", m)
	}
	want := []struct {
		decision, name string
		shots          int
		visit          string
	}{{DecisionKnown, "Ada", 2, named.ID}, {DecisionDeciding, "", 1, ""}, {DecisionUnknown, "", 1, unknown.ID}, {DecisionDeciding, "", 0, ""}}
	for i, w := range want {
		tr := m.Tracks[i]
		if tr.TrackID != boxes[i].TrackID || tr.Box != boxes[i].Box || tr.Coasting != boxes[i].Coasting ||
			tr.Decision != w.decision || tr.Name != w.name || tr.Shots != w.shots || tr.VisitID != w.visit {
			t.Errorf("track %d: %+v, want %+v", boxes[i].TrackID, tr, w)
		}
		if (tr.Confidence != nil) != (w.decision == DecisionKnown) || (tr.Confidence != nil && *tr.Confidence != 0.87) {
			t.Errorf("track %d: confidence %v", boxes[i].TrackID, tr.Confidence)
		}
	}
	// The packets of the access unit with the frame's PTS carry the same
	// timestamp. A viewer behind (this machine is loaded) may drop that
	// unit and wait for the next key unit: try a few frames.
	matched := false
	var tried []string
	for attempt := 1; attempt <= 10 && !matched; attempt++ {
		for {
			if _, ok, _ := aus.TryPop(); !ok {
				break
			}
		}
		au, err := aus.Pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ls.srv.PublishTracks(face.TrackBoxes{Camera: "front", Seq: uint64(100 + attempt), PTS: au.PTS, Tracks: boxes[:1]})
		var m tracksSeen
		for m.Seq != uint64(100+attempt) {
			select {
			case s := <-c.messages:
				if strings.Contains(s, `"type":"tracks"`) {
					decodeJSON(t, s, &m)
				}
			case <-ctx.Done():
				t.Fatal("no tracks message on the events data channel")
			}
		}
		if m.RTPTimestamp == nil {
			t.Fatalf("tracks message without an rtp timestamp while the video runs: %+v", m)
		}
		wait := time.After(3 * time.Second)
	scan:
		for {
			select {
			case pkt := <-c.packets:
				if pkt.Timestamp == *m.RTPTimestamp {
					matched = true
					break scan
				}
			case <-wait:
				tried = append(tried, fmt.Sprintf("PTS %v -> %d", au.PTS, *m.RTPTimestamp))
				break scan
			}
		}
	}
	if !matched {
		t.Fatalf("no video packet carried the rtp timestamp of a tracks message: %v", tried)
	}
	for _, s := range ls.srv.Stats() {
		if s.Camera == "front" && s.TracksSent < 2 {
			t.Errorf("front: %d track messages sent, want at least 2", s.TracksSent)
		}
		if s.Camera == "back" && s.TracksSent != 0 {
			t.Errorf("back (no viewer): %d track messages sent", s.TracksSent)
		}
	}
}

// PublishTracks never waits: a burst far beyond what the queues hold
// returns, the oldest boxes are dropped and counted, and the viewer gets
// the newest; a camera without viewers costs nothing.
func TestTrackBoxesDropWhenBehind(t *testing.T) {
	requireFFmpeg(t)
	testutil.LeakCheck(t)
	ctx := testutil.Context(t, 60*time.Second)
	cam := startCamera(t, "front", h264)
	ls := startLive(t, Options{Cameras: map[string]Source{"front": cam}})
	ls.srv.PublishTracks(face.TrackBoxes{Camera: "front", Seq: 1})
	ls.srv.PublishTracks(face.TrackBoxes{Camera: "nowhere", Seq: 1})
	if st := ls.srv.Stats()[0]; st.TracksDropped != 0 || st.TracksSent != 0 {
		t.Fatalf("without viewers: %+v", st)
	}
	c := newWHEPClient(t, clientOptions{})
	connect(t, ctx, ls, c, "front")
	c.waitState(t, ctx, webrtc.PeerConnectionStateConnected)
	<-c.dcOpen
	const n = 5000
	for i := range n {
		ls.srv.PublishTracks(face.TrackBoxes{Camera: "front", Seq: uint64(i + 1), Tracks: []face.TrackBox{{TrackID: 1}}})
	}
	var last tracksSeen
	testutil.WaitFor(t, ctx, "the newest boxes to arrive", func() bool {
		for {
			select {
			case s := <-c.messages:
				decodeJSON(t, s, &last)
			default:
				return last.Seq == n
			}
		}
	})
	st := ls.srv.Stats()[0]
	if st.TracksDropped == 0 || st.TracksSent+st.TracksDropped > n || st.TracksSent >= n {
		t.Errorf("after %d boxes in a burst: %d sent, %d dropped; want drops, and no more accounted than published", n, st.TracksSent, st.TracksDropped)
	}
}
