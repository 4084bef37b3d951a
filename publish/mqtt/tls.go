package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles are the client TLS settings towards a broker (publish.mqtt.tls):
// file paths as configured.
type TLSFiles struct {
	// CAFile is a PEM bundle of roots to trust; "" trusts the system roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, both
	// or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify turns certificate verification off.
	InsecureSkipVerify bool
}

// ClientTLS is the one place the MQTT client's TLS configuration is built
// (the daemon, hwtest): TLS 1.2 or newer, the CA file's roots, the client
// certificate. It returns nil when f sets nothing (system roots; the server
// name is taken from the broker URL at each connection). Errors name the
// setting and the file.
func ClientTLS(f TLSFiles) (*tls.Config, error) {
	if f == (TLSFiles{}) {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // operator's choice
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", f.CAFile)
		}
		tc.RootCAs = pool
	}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, fmt.Errorf("cert_file %q and key_file %q: set both or neither", f.CertFile, f.KeyFile)
		}
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s / key_file %s: %w", f.CertFile, f.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
