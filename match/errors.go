package match

import (
	"errors"

	"github.com/srdgd/srdgd/internal/faceimg"
)

// Sentinel errors; returned errors wrap them with the object and value.
var (
	// ErrKey: the key file is missing, unreadable or malformed.
	ErrKey = errors.New("gallery key")
	// ErrWrongKey: the key does not decrypt the gallery's key check value.
	ErrWrongKey = errors.New("wrong gallery key")
	// ErrEncryptionMode: the gallery is encrypted and no key was given, or it
	// is plaintext and a key was given.
	ErrEncryptionMode = errors.New("gallery encryption mode")
	// ErrSchema: the gallery file's schema is newer than this program or broken.
	ErrSchema = errors.New("gallery schema")
	// ErrNotFound: no person of that name.
	ErrNotFound = errors.New("not in the gallery")
	// ErrNoFace, ErrSeveralFaces, ErrUnreadable, ErrTooLarge: why a photo was
	// rejected.
	ErrNoFace       = errors.New("no face found")
	ErrSeveralFaces = errors.New("several faces found")
	ErrUnreadable   = faceimg.ErrUnreadable
	ErrTooLarge     = faceimg.ErrTooLarge
	// ErrNoEmbedder, ErrNoFinder: the gallery was opened without the component
	// an operation needs.
	ErrNoEmbedder = errors.New("gallery opened without a face embedder")
	ErrNoFinder   = errors.New("gallery opened without a face finder")
)
