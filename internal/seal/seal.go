// Package seal encrypts blobs at rest with AES-256-GCM. The gallery and the
// hit history share it, and with it one on-disk format: version byte 1, a
// random 96-bit nonce, then the ciphertext with its 128-bit tag. The
// associated data binds a blob to its place (table and owning row), so a
// blob copied to another row does not decrypt.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

const version = 1

// ErrDecrypt reports a blob that does not open with the key.
var ErrDecrypt = errors.New("does not decrypt with this key (wrong key or tampered data)")

// Sealer seals and opens blobs. A nil *Sealer stores plaintext.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%d-byte key, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: g}, nil
}

// Seal encrypts plain bound to ad.
func (s *Sealer) Seal(plain []byte, ad string) ([]byte, error) {
	if s == nil {
		return plain, nil
	}
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+ns], plain, []byte(ad)), nil
}

// Open decrypts a blob made by Seal with the same ad.
func (s *Sealer) Open(blob []byte, ad string) ([]byte, error) {
	if s == nil {
		return blob, nil
	}
	ns := s.aead.NonceSize()
	if len(blob) < 1+ns+s.aead.Overhead() || blob[0] != version {
		return nil, fmt.Errorf("encrypted blob of %d bytes, version %d: not in the expected format", len(blob), firstByte(blob))
	}
	p, err := s.aead.Open(nil, blob[1:1+ns], blob[1+ns:], []byte(ad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return p, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
