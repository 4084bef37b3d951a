package httpapi

import "errors"

// Sentinel errors the adapters wrap so that the API maps them to status codes.
var (
	// ErrNotFound: the hit, person or photo does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request names something the store refuses as malformed,
	// e.g. a person's name with control characters (400).
	ErrInvalid = errors.New("invalid")
	// ErrNoToken: a listen address that is not loopback without a token.
	ErrNoToken = errors.New("a token is required")
)
