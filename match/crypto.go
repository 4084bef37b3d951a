package match

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/srdgd/srdgd/internal/seal"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// LoadKey reads a gallery key file: exactly 32 raw bytes, or 64 hexadecimal
// characters (optionally followed by a newline).
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no key file configured (create one with GenerateKey / `srdgd gallery keygen`)", ErrKey)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: key file %s: %w", ErrKey, path, err)
	}
	if len(b) == KeySize {
		return b, nil
	}
	t := bytes.TrimRight(b, "\r\n")
	if len(t) == 2*KeySize {
		k := make([]byte, KeySize)
		if _, err := hex.Decode(k, t); err != nil {
			return nil, fmt.Errorf("%w: key file %s has 64 characters but they are not hexadecimal: %w", ErrKey, path, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: key file %s has %d bytes; want 32 raw bytes or 64 hexadecimal characters (AES-256)", ErrKey, path, len(b))
}

// GenerateKey writes a new random key (64 hexadecimal characters and a
// newline) to path with mode 0600. It refuses to overwrite an existing file:
// losing a key loses the gallery.
func GenerateKey(path string) error {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("key file %s: random: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	if _, err := fmt.Fprintf(f, "%x\n", k); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("key file %s: %w", path, err)
	}
	return f.Close()
}

// sealer is the at-rest encryption shared with the hit history; a nil
// *sealer stores plaintext.
type sealer = seal.Sealer

func newSealer(key []byte) (*sealer, error) {
	s, err := seal.New(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return s, nil
}

var errDecrypt = seal.ErrDecrypt
