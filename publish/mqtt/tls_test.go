package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srdgd/srdgd/internal/testutil"
)

// TestClientTLS builds the client configuration from real files and uses it
// against the embedded broker behind a TLS listener.
func TestClientTLS(t *testing.T) {
	b := startEmbedded(t, true)
	cert, _ := testutil.SelfSigned(t)
	tlsAddr := startTLSProxy(t, b.Addr(), cert)
	other, _ := testutil.SelfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := testutil.WritePEM(t, dir, cert)
	otherCA, _ := testutil.WritePEM(t, t.TempDir(), other)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		f       TLSFiles
		wantErr string // substring of ClientTLS's error; "" = builds
		nilCfg  bool
		probe   error // with the config against the TLS broker: nil = connects
	}{
		{"nothing set: system roots", TLSFiles{}, "", true, ErrTLS},
		{"trusted ca", TLSFiles{CAFile: certFile}, "", false, nil},
		{"client certificate", TLSFiles{CAFile: certFile, CertFile: certFile, KeyFile: keyFile}, "", false, nil},
		{"insecure", TLSFiles{InsecureSkipVerify: true}, "", false, nil},
		{"other ca", TLSFiles{CAFile: otherCA}, "", false, ErrTLS},
		{"missing ca file", TLSFiles{CAFile: filepath.Join(dir, "none.pem")}, "ca_file: open " + filepath.Join(dir, "none.pem"), false, nil},
		{"ca file without PEM", TLSFiles{CAFile: garbage}, "ca_file " + garbage + ": no PEM certificate", false, nil},
		{"cert without key", TLSFiles{CertFile: certFile}, "set both or neither", false, nil},
		{"key is not a key", TLSFiles{CertFile: certFile, KeyFile: garbage}, "cert_file " + certFile + " / key_file " + garbage, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := ClientTLS(tt.f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClientTLS: %v", err)
			}
			if (tc == nil) != tt.nilCfg {
				t.Fatalf("config %v, want nil %v", tc, tt.nilCfg)
			}
			if tc != nil && tc.MinVersion != tls.VersionTLS12 {
				t.Fatalf("min version %x", tc.MinVersion)
			}
			if tt.f.CertFile != "" && len(tc.Certificates) != 1 {
				t.Fatalf("client certificate not loaded")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = Probe(ctx, Options{Broker: "mqtts://" + tlsAddr, Username: testUser, Password: testPass, TLS: tc})
			switch {
			case tt.probe == nil && err != nil:
				t.Fatalf("probe with the config: %v", err)
			case tt.probe != nil && !errors.Is(err, tt.probe):
				t.Fatalf("probe error %v, want %v", err, tt.probe)
			}
		})
	}
}
