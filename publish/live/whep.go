package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/srdgd/srdgd/face"
)

const (
	// maxOfferBytes bounds a WHEP offer; browser offers are a few KiB.
	maxOfferBytes = 64 << 10
	// defaultConnectTimeout ends sessions whose peer has not completed ICE
	// and DTLS by then (Options.ConnectTimeout). A viewer on a LAN connects
	// in well under a second, one through TURN in one or two.
	defaultConnectTimeout = 5 * time.Second
)

// Handler serves WHEP (RFC 9725) and the camera list:
//
//	GET     /whep                    cameras and whether they are viewable (JSON)
//	POST    /whep/{camera}           SDP offer in, 201 + SDP answer + Location out
//	DELETE  /whep/{camera}/{session} ends the session
//	PATCH   /whep/{camera}/{session} 405: answers are complete (no trickle ICE)
//	OPTIONS /whep/{camera}           CORS preflight and Accept-Post
//
// Authentication is the job of whoever mounts it; the handler is a plain
// http.Handler so it can be wrapped.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whep", s.handleList)
	mux.HandleFunc("POST /whep/{camera}", s.handleOffer)
	mux.HandleFunc("OPTIONS /whep/{camera}", s.handleOptions)
	mux.HandleFunc("DELETE /whep/{camera}/{session}", s.handleDelete)
	mux.HandleFunc("PATCH /whep/{camera}/{session}", s.handlePatch)
	mux.HandleFunc("OPTIONS /whep/{camera}/{session}", s.handleOptions)
	return s.cors(mux)
}

func (s *Server) cors(next http.Handler) http.Handler {
	if s.o.AllowOrigin == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", s.o.AllowOrigin)
		if s.o.AllowOrigin != "*" {
			h.Add("Vary", "Origin")
		}
		h.Set("Access-Control-Expose-Headers", "Location, Link, Accept-Post")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, PATCH, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
			h.Set("Access-Control-Max-Age", "600")
		}
		next.ServeHTTP(w, r)
	})
}

// httpError writes {"error": msg} with the status.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (s *Server) handleList(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"cameras": s.Cameras()})
}

func (s *Server) handleOptions(w http.ResponseWriter, r *http.Request) {
	if s.cams[r.PathValue("camera")] == nil {
		httpError(w, http.StatusNotFound, fmt.Sprintf("camera %q: %v", r.PathValue("camera"), ErrUnknownCamera))
		return
	}
	if r.PathValue("session") == "" {
		w.Header().Set("Accept-Post", "application/sdp")
		w.Header().Set("Allow", "POST, OPTIONS")
		s.linkICEServers(w)
	} else {
		w.Header().Set("Allow", "DELETE, PATCH, OPTIONS")
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePatch(w http.ResponseWriter, _ *http.Request) {
	// RFC 9725 section 4.3: a server without trickle ICE answers 405. Answers
	// carry every candidate, so the session needs nothing more.
	w.Header().Set("Allow", "DELETE, OPTIONS")
	httpError(w, http.StatusMethodNotAllowed, "trickle ice and ice restarts are not supported: the answer already lists every candidate")
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	cam, id := r.PathValue("camera"), r.PathValue("session")
	v := s.session(cam, id)
	if v == nil {
		httpError(w, http.StatusNotFound, fmt.Sprintf("camera %q session %q: %v", cam, id, ErrUnknownSession))
		return
	}
	v.cancel()
	select {
	case <-v.done:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

// linkICEServers advertises the ICE servers (RFC 9725 section 4.6).
func (s *Server) linkICEServers(w http.ResponseWriter) {
	for _, is := range s.o.ICEServers {
		for _, u := range is.URLs {
			link := fmt.Sprintf("<%s>; rel=\"ice-server\"", u)
			if is.Username != "" {
				link += fmt.Sprintf("; username=%q; credential=%q; credential-type=\"password\"", is.Username, is.Credential)
			}
			w.Header().Add("Link", link)
		}
	}
}

func (s *Server) handleOffer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("camera")
	cam := s.cams[name]
	if cam == nil {
		httpError(w, http.StatusNotFound, fmt.Sprintf("camera %q: %v", name, ErrUnknownCamera))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		httpError(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("content type %q: want application/sdp", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("offer larger than %d bytes", maxOfferBytes))
			return
		}
		httpError(w, http.StatusBadRequest, fmt.Sprintf("read offer: %v", err))
		return
	}
	offered, err := parseOffer(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	runCtx, api, ok := s.running()
	if !ok {
		httpError(w, http.StatusServiceUnavailable, ErrNotRunning.Error())
		return
	}
	info, err := cam.waitInfo(r.Context(), s.o.FirstVideoTimeout)
	if err != nil {
		cam.rejected.Add(1)
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if info.codec != face.CodecH264 {
		cam.rejected.Add(1)
		httpError(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("camera %q: %v: %s", name, ErrCodecNotSupported, codecReason(info.codec)))
		return
	}
	if !cam.reserve(s.o.MaxViewers) {
		cam.rejected.Add(1)
		w.Header().Set("Retry-After", "10")
		httpError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("camera %q: %v (at most %d)", name, ErrTooManyViewers, s.o.MaxViewers))
		return
	}
	codec := chooseH264(offered, info.profile)
	v, answer, status, err := s.newSession(r.Context(), runCtx, api, cam, codec, string(body))
	if err != nil {
		cam.release()
		cam.rejected.Add(1)
		s.log.Warn("whep session failed", "camera", name, "status", status, "err", err)
		httpError(w, status, err.Error())
		return
	}

	if !s.start(v) {
		cam.release()
		_ = v.pc.Close()
		httpError(w, http.StatusServiceUnavailable, ErrNotRunning.Error())
		return
	}
	cam.sessions.Add(1)
	v.log.Info("viewer joined", "remote", r.RemoteAddr, "fmtp", codec.Fmtp)

	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", s.o.BasePath+"/whep/"+url.PathEscape(name)+"/"+v.id)
	w.Header().Set("Cache-Control", "no-store")
	s.linkICEServers(w)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// start registers the session and starts its goroutine, unless Run is ending.
func (s *Server) start(v *viewer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.sessions[v.id] = v
	v.cam.attach(v)
	s.wg.Go(func() {
		v.run(s.o.ConnectTimeout, func() {
			v.cam.detach(v)
			s.removeSession(v.id)
		})
	})
	return true
}

// newSession builds the peer connection for one viewer and answers its offer.
// The answer is complete (ICE gathering finished), as WHEP without trickle
// requires. On error it returns the HTTP status to answer with.
func (s *Server) newSession(reqCtx, runCtx context.Context, api apiConfig, cam *camera, codec offeredH264,
	offer string) (*viewer, string, int, error) {
	params := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:    webrtc.MimeTypeH264,
			ClockRate:   90000,
			SDPFmtpLine: codec.Fmtp,
		},
		PayloadType: webrtc.PayloadType(codec.PayloadType),
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(params, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("camera %q: register codec: %w", cam.name, err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir,
		webrtc.WithInterceptorLoggerFactory(pionLogs{log: s.log})); err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("camera %q: interceptors: %w", cam.name, err)
	}
	wapi := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(api.settings))
	pc, err := wapi.NewPeerConnection(webrtc.Configuration{ICEServers: api.ice})
	if err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("camera %q: new peer connection: %w", cam.name, err)
	}
	fail := func(status int, format string, args ...any) (*viewer, string, int, error) {
		_ = pc.Close()
		return nil, "", status, fmt.Errorf("camera %q: "+format, append([]any{cam.name}, args...)...)
	}

	id := newSessionID()
	v := newViewer(runCtx, id, cam, s.log.With("camera", cam.name, "session", id), s.o.ViewerQueue, s.o.EventQueue)
	v.pc = pc
	v.track, err = webrtc.NewTrackLocalStaticRTP(params.RTPCodecCapability, "video", "srdgd-"+cam.name)
	if err != nil {
		v.cancel()
		return fail(http.StatusInternalServerError, "new track: %w", err)
	}
	v.watch()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		v.cancel()
		return fail(http.StatusBadRequest, "%w: %v", ErrBadOffer, err)
	}
	if v.sender, err = pc.AddTrack(v.track); err != nil {
		v.cancel()
		return fail(http.StatusInternalServerError, "add track: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		v.cancel()
		return fail(http.StatusBadRequest, "%w: create answer: %v", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		v.cancel()
		return fail(http.StatusInternalServerError, "set local description: %w", err)
	}
	t := time.NewTimer(s.o.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		v.cancel()
		return fail(http.StatusInternalServerError, "ice gathering took longer than %v", s.o.GatherTimeout)
	case <-reqCtx.Done():
		v.cancel()
		return fail(http.StatusServiceUnavailable, "ice gathering: %w", reqCtx.Err())
	case <-runCtx.Done():
		v.cancel()
		return fail(http.StatusServiceUnavailable, "%w", ErrNotRunning)
	}
	return v, pc.LocalDescription().SDP, http.StatusCreated, nil
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
