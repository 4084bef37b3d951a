package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pemFiles writes cert's certificate and key as PEM files in dir.
func pemFiles(t *testing.T, dir string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	kder, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestClientTLS builds the client configuration from real files and uses it
// against the embedded broker behind a TLS listener.
func TestClientTLS(t *testing.T) {
	b := startEmbedded(t, true)
	cert, _ := selfSigned(t)
	tlsAddr := startTLSProxy(t, b.Addr(), cert)
	other, _ := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := pemFiles(t, dir, cert)
	otherCA, _ := pemFiles(t, t.TempDir(), other)
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
