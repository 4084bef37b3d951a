package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"
)

// parseFingerprint accepts a hex SHA-256 with optional colons, any case.
func parseFingerprint(s string) ([]byte, error) {
	h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("tls fingerprint %q: want the 64 hex digits of a SHA-256", s)
	}
	return b, nil
}

// tlsConfig builds the client TLS configuration for rtsps. With a pin, chain
// verification is replaced by comparing the leaf certificate's SHA-256, which
// is how self-signed camera certificates are trusted.
func tlsConfig(insecure bool, pin []byte) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case pin != nil:
		cfg.InsecureSkipVerify = true //nolint:gosec // replaced by the pin check below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: server sent no certificate", ErrFingerprintMismatch)
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("%w: server certificate is %s", ErrFingerprintMismatch, hex.EncodeToString(sum[:]))
			}
			return nil
		}
	case insecure:
		cfg.InsecureSkipVerify = true //nolint:gosec // asked for by the operator
	}
	return cfg
}
