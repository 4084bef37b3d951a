package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/testutil"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	cert, pool := testutil.SelfSigned(t)
	certFile, keyFile = testutil.WritePEM(t, t.TempDir(), cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	r := start(t, httpapi.Options{Token: token, TLSCertFile: cert, TLSKeyFile: key})
	r.url = strings.Replace(r.url, "http://", "https://", 1)
	r.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	got := r.do(t, "POST", "/api/v1/login", strings.NewReader(`{"token":"`+token+`"}`))
	if got.status != 200 {
		t.Fatalf("login over TLS: %d %s", got.status, got.body)
	}
	c := (&http.Response{Header: got.header}).Cookies()[0]
	if !c.Secure {
		t.Error("session cookie over HTTPS is not Secure")
	}
	if got.header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over HTTPS")
	}
	// plain HTTP to the TLS port is refused
	resp, err := http.Get("http://" + r.srv.Addr().String() + "/api/v1/health")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP to the TLS listener: %d", resp.StatusCode)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	r := start(t, httpapi.Options{Token: token, SessionTTL: time.Nanosecond})
	got := r.do(t, "POST", "/api/v1/login", strings.NewReader(`{"token":"`+token+`"}`))
	c := (&http.Response{Header: got.header}).Cookies()[0]
	got = r.do(t, "GET", "/api/v1/version", nil, "Cookie: srdgd_session="+c.Value)
	if msg, _ := got.apiErr(t); got.status != http.StatusUnauthorized || !strings.Contains(msg, "expired") {
		t.Fatalf("expired session: %d %q", got.status, msg)
	}
}

// TestGracefulShutdown: a request in flight when ctx ends completes; Run
// then returns nil.
func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	live := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "answer")
	})
	s, err := httpapi.New(httpapi.Options{Listen: "127.0.0.1:0", Live: live})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Post("http://"+s.Addr().String()+"/whep/door", "application/sdp", strings.NewReader("v=0"))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{string(b), err}
	}()
	<-entered
	cancel()
	// the listener closes at once; the request in flight goes on
	for {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		select {
		case <-time.After(10 * time.Millisecond): // polling the listener, not synchronising
		case err := <-done:
			t.Fatalf("Run returned %v before the request finished", err)
		}
	}
	close(release)
	if r := <-res; r.err != nil || r.body != "answer" {
		t.Fatalf("request in flight: %q %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
