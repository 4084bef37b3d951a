package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/publish/httpapi"
)

// FuzzAPIRequest sends arbitrary authenticated requests through the whole
// handler: no request may crash it or get a 500 (the stores here do not
// fail), and every API answer is JSON, with an error message when it fails.
// Seeds: testdata/fuzz/FuzzAPIRequest.
func FuzzAPIRequest(f *testing.F) {
	hist, _ := hitFixture(f)
	// the visits: the real history store (visits_test.go)
	vstore, _ := visitFixture(f)
	s, err := httpapi.New(httpapi.Options{Token: token, Hits: hist, Visits: app.HistoryAPI{S: vstore}, Auditor: hist, MaxBodyBytes: 4096,
		AuthFailBurst: 1 << 30, AuthFailEvery: time.Nanosecond})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		req, err := http.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(body))
		if err != nil || req.URL.Path == "" || !strings.HasPrefix(req.URL.Path, "/") {
			return
		}
		req.RemoteAddr = "127.0.0.1:1234"
		req.Header.Set("Authorization", "Bearer "+token)
		if len(body) > 0 && body[0] == '{' {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q: %d %s", method, target, rec.Code, rec.Body)
		}
		if !strings.HasPrefix(req.URL.Path, "/api/") || method == "HEAD" {
			return
		}
		ct := rec.Header().Get("Content-Type")
		if strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "application/schema+json") || rec.Code == http.StatusNoContent {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %q: %d %q is not a JSON object (%q): %v", method, target, rec.Code, rec.Body, ct, err)
		}
		if msg, _ := v["error"].(string); rec.Code >= 400 && msg == "" {
			t.Fatalf("%s %q: %d without an error message: %s", method, target, rec.Code, rec.Body)
		}
	})
}
