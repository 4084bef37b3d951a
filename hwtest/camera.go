package hwtest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/srdgd/srdgd/ingest"
)

// checkCamera runs the camera's steps in order and stops at the first that
// fails: TCP connect, RTSP DESCRIBE (codec and, from the SDP's parameter sets,
// resolution), then a short ingest session that must decode one frame.
// The message never contains the password.
func (o *Options) checkCamera(ctx context.Context, cam Camera) Check {
	c := Check{Name: "camera/" + cam.Name, Values: map[string]any{}}
	ctx, cancel := context.WithTimeout(ctx, o.CameraTimeout)
	defer cancel()
	red := redactor(cam.Password)
	fail := func(format string, args ...any) Check {
		c.Status = StatusFail
		c.Message = red(fmt.Sprintf(format, args...))
		return c
	}

	u, err := url.Parse(cam.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("url: %v", err)
	}
	if u.User != nil && cam.Username == "" {
		cam.Username = u.User.Username()
		cam.Password, _ = u.User.Password()
		red = redactor(cam.Password)
	}
	u.User = nil
	safe := u.String()
	c.Values["url"] = safe
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return fail("url %s: scheme %q: want rtsp or rtsps", safe, u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		port := "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}

	// 1. reachable
	t0 := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fail("%s: tcp %s unreachable: %v (check the address, the camera's power and any firewall)", safe, host, err)
	}
	conn.Close()
	c.Values["connect_ms"] = round2(ms(time.Since(t0)))

	// 2. DESCRIBE
	var tcfg *tls.Config
	if u.Scheme == "rtsps" {
		if tcfg, err = cameraTLS(cam); err != nil {
			return fail("%s: %v", safe, err)
		}
	}
	withCreds := *u
	if cam.Username != "" {
		withCreds.User = url.UserPassword(cam.Username, cam.Password)
	}
	bu := base.URL(withCreds)
	client := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, TLSConfig: tcfg,
		ReadTimeout: o.CameraTimeout, WriteTimeout: o.CameraTimeout, UserAgent: "srdgd-hwtest"}
	if err := client.Start2(); err != nil {
		return fail("%s: rtsp client: %v", safe, err)
	}
	stop := context.AfterFunc(ctx, client.Close) // unblocks Describe when ctx ends
	t0 = time.Now()
	desc, _, err := client.Describe(&bu)
	stop()
	client.Close()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", o.CameraTimeout)
		}
		var bad liberrors.ErrClientBadStatusCode
		switch {
		case errors.As(err, &bad) && bad.Code == base.StatusUnauthorized:
			return fail("%s: DESCRIBE: credentials rejected (%v): check username and the password variable/file", safe, err)
		case errors.As(err, &bad) && bad.Code == base.StatusNotFound:
			return fail("%s: DESCRIBE: no such stream (%v): check the path", safe, err)
		}
		return fail("%s: DESCRIBE: %v", safe, err)
	}
	c.Values["describe_ms"] = round2(ms(time.Since(t0)))
	codec, w, h, all := videoOf(desc.Medias)
	if codec == "" {
		return fail("%s: no H.264 or H.265 video in the stream (it has: %s)", safe, all)
	}
	c.Values["codec"] = codec
	if w > 0 {
		c.Values["sdp_size"] = fmt.Sprintf("%dx%d", w, h)
	}

	// 3. a decoded frame, through the daemon's own ingest
	cam2, err := ingest.NewCamera(ingest.CameraOptions{Name: cam.Name, URL: safe, Username: cam.Username, Password: cam.Password,
		Transport: cam.Transport, TLSInsecure: cam.TLSInsecure, TLSFingerprint: cam.TLSFingerprint,
		ReadTimeout: o.CameraTimeout, ReconnectInitial: 200 * time.Millisecond, ReconnectMax: time.Second,
		Logger: o.Logger})
	if err != nil {
		return fail("%v", err)
	}
	frames := cam2.SubscribeFrames(1)
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	t0 = time.Now()
	go func() { done <- cam2.Run(runCtx) }()
	f, popErr := frames.Pop(ctx)
	firstFrame := time.Since(t0)
	st := cam2.Status()
	stopRun()
	runErr := <-done
	if popErr != nil {
		why := st.LastError
		if why == "" && runErr != nil {
			why = runErr.Error()
		}
		if why == "" {
			why = "no error reported"
		}
		return fail("%s: %s answers DESCRIBE but no frame decoded within %s (%s)", safe, codec, o.CameraTimeout, why)
	}
	f.Release()
	c.Values["first_frame_ms"] = round2(ms(firstFrame))
	c.Values["size"] = fmt.Sprintf("%dx%d", f.Width, f.Height)
	c.Values["transport"] = st.Transport
	c.Status = StatusOK
	c.Message = fmt.Sprintf("%s: %s %dx%d over %s, first frame decoded after %s", safe, codec, f.Width, f.Height,
		st.Transport, firstFrame.Round(time.Millisecond))
	return c
}

// videoOf returns the first H.264/H.265 track's codec and the size its SDP
// parameter sets give (0 when absent), and a list of every format for messages.
func videoOf(medias []*description.Media) (codec string, w, h int, all string) {
	var names []string
	for _, m := range medias {
		for _, f := range m.Formats {
			names = append(names, f.Codec())
			if codec != "" {
				continue
			}
			switch f := f.(type) {
			case *format.H264:
				codec = "h264"
				if sps, _ := f.SafeParams(); len(sps) > 0 {
					var s h264.SPS
					if s.Unmarshal(sps) == nil {
						w, h = s.Width(), s.Height()
					}
				}
			case *format.H265:
				codec = "h265"
				if _, sps, _ := f.SafeParams(); len(sps) > 0 {
					var s h265.SPS
					if s.Unmarshal(sps) == nil {
						w, h = s.Width(), s.Height()
					}
				}
			}
		}
	}
	if len(names) == 0 {
		names = []string{"nothing"}
	}
	return codec, w, h, strings.Join(names, ", ")
}

// cameraTLS mirrors the daemon's rtsps settings: a pinned certificate
// (SHA-256 of its DER bytes), verification off, or the system roots.
func cameraTLS(cam Camera) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cam.TLSFingerprint != "":
		pin, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(cam.TLSFingerprint), ":", "")))
		if err != nil || len(pin) != sha256.Size {
			return nil, fmt.Errorf("tls fingerprint %q: want the 64 hex digits of a SHA-256", cam.TLSFingerprint)
		}
		cfg.InsecureSkipVerify = true //nolint:gosec // replaced by the pin check
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("certificate fingerprint %x does not match tls_fingerprint", sum)
			}
			return nil
		}
	case cam.TLSInsecure:
		cfg.InsecureSkipVerify = true //nolint:gosec // asked for by the operator
	}
	return cfg, nil
}

// redactor returns a function that blanks the secret (and its URL-escaped
// form) out of a message.
func redactor(secret string) func(string) string {
	if secret == "" {
		return func(s string) string { return s }
	}
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
	return func(s string) string {
		for _, f := range forms {
			if f != "" {
				s = strings.ReplaceAll(s, f, "***")
			}
		}
		return s
	}
}
