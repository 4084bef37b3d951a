package hwtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/srdgd/srdgd/ingest"
)

// checkCamera probes the camera with the daemon's own ingest (ingest.Probe):
// TCP connect, RTSP DESCRIBE (codec and, from the SDP's parameter sets,
// resolution), then a short session that must decode one frame. It stops
// at the first step that fails; the message never contains the password.
func (o *Options) checkCamera(ctx context.Context, cam Camera) Check {
	c := Check{Name: "camera/" + cam.Name, Values: map[string]any{}}
	key := cam.Key
	if key == "" {
		key = "cameras[name=" + cam.Name + "]"
	}
	ctx, cancel := context.WithTimeout(ctx, o.CameraTimeout)
	defer cancel()
	fail := func(format string, args ...any) Check {
		c.Status = StatusFail
		c.Message = fmt.Sprintf(format, args...)
		return c
	}
	res, err := ingest.Probe(ctx, ingest.CameraOptions{Name: cam.Name, URL: cam.URL, Username: cam.Username,
		Password: cam.Password, Transport: cam.Transport, TLSInsecure: cam.TLSInsecure, TLSFingerprint: cam.TLSFingerprint,
		ReadTimeout: o.CameraTimeout, Logger: o.Logger})
	var pe *ingest.ProbeError
	if err != nil && !errors.As(err, &pe) {
		return fail("%s: %v", key, err) // the options: URL, scheme, TLS settings
	}
	if pe != nil {
		c.Values["url"] = pe.URL
		safe, why := pe.URL, pe.Err
		switch {
		case pe.Step == ingest.ProbeConnect:
			return fail("%s: %v (check the address in %s.url, the camera's power and any firewall)", safe, why, key)
		case pe.Step == ingest.ProbeFrame:
			return fail("%s: %v within %s", safe, why, o.CameraTimeout)
		case errors.Is(why, ingest.ErrAuthRejected):
			return fail("%s: DESCRIBE: %v: check %s.username and %s.password_env or password_file", safe, why, key, key)
		case errors.Is(why, ingest.ErrStreamNotFound):
			return fail("%s: DESCRIBE: %v: check the path in %s.url", safe, why, key)
		case errors.Is(why, ingest.ErrFingerprintMismatch):
			return fail("%s: DESCRIBE: the certificate does not match %s.tls_fingerprint (%v)", safe, key, why)
		case errors.Is(why, ingest.ErrUnsupportedCodec):
			return fail("%s: no H.264 or H.265 video in the stream (%v)", safe, why)
		case errors.Is(why, context.DeadlineExceeded):
			return fail("%s: DESCRIBE: no answer within %s (is it an RTSP server?)", safe, o.CameraTimeout)
		}
		return fail("%s: DESCRIBE: %v", safe, why)
	}
	codec := strings.ToLower(res.Codec)
	c.Values["url"] = res.URL
	c.Values["connect_ms"] = round2(ms(res.Connect))
	c.Values["describe_ms"] = round2(ms(res.Describe))
	c.Values["codec"] = codec
	if res.SDPWidth > 0 {
		c.Values["sdp_size"] = fmt.Sprintf("%dx%d", res.SDPWidth, res.SDPHeight)
	}
	c.Values["first_frame_ms"] = round2(ms(res.FirstFrame))
	c.Values["size"] = fmt.Sprintf("%dx%d", res.Width, res.Height)
	c.Values["transport"] = res.Transport
	c.Status = StatusOK
	c.Message = fmt.Sprintf("%s: %s %dx%d over %s, first frame decoded after %s", res.URL, codec, res.Width, res.Height,
		res.Transport, res.FirstFrame.Round(time.Millisecond))
	return c
}

// checkNoCamera warns that the daemon would watch nothing.
func (o *Options) checkNoCamera() Check {
	c := Check{Name: "cameras", Status: StatusWarn, Values: map[string]any{"enabled": 0, "disabled": o.DisabledCameras}}
	if o.DisabledCameras > 0 {
		c.Message = fmt.Sprintf("every camera in cameras: has enabled: false (%d): the daemon would start but watch nothing", o.DisabledCameras)
	} else {
		c.Message = "no camera configured (cameras: is empty): the daemon would start but watch nothing; add one to the config (srdgd config example shows how)"
	}
	return c
}
