package match

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// sealer encrypts blobs with AES-256-GCM: version byte 1, a random 96-bit
// nonce, then the ciphertext with its 128-bit tag. The associated data binds a
// blob to its place (table and owning row), so a blob copied to another row
// does not decrypt. A nil *sealer stores plaintext.
type sealer struct {
	aead cipher.AEAD
}

const sealVersion = 1

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %d-byte key, want %d", ErrKey, len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: g}, nil
}

func (s *sealer) seal(plain []byte, ad string) ([]byte, error) {
	if s == nil {
		return plain, nil
	}
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+ns], plain, []byte(ad)), nil
}

var errDecrypt = errors.New("does not decrypt with this key (wrong key or tampered data)")

func (s *sealer) open(blob []byte, ad string) ([]byte, error) {
	if s == nil {
		return blob, nil
	}
	ns := s.aead.NonceSize()
	if len(blob) < 1+ns+s.aead.Overhead() || blob[0] != sealVersion {
		return nil, fmt.Errorf("encrypted blob of %d bytes, version %d: not in the expected format", len(blob), firstByte(blob))
	}
	p, err := s.aead.Open(nil, blob[1:1+ns], blob[1+ns:], []byte(ad))
	if err != nil {
		return nil, errDecrypt
	}
	return p, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
