package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

const redacted = "[redacted]"

// Secret holds a password or token. Every way of printing it (fmt verbs,
// %#v, JSON, slog) shows [redacted]; only Reveal returns the value.
type Secret struct {
	v string
}

// NewSecret wraps a value, for configs built in code and tests.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value. Call it only where the value is handed
// to the peer that needs it.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.v != "" }

// String returns [redacted].
func (s Secret) String() string { return redacted }

// GoString returns [redacted].
func (s Secret) GoString() string { return redacted }

// Format prints [redacted] for every verb, so %d or %x cannot expose the
// bytes the way they would for a plain struct.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON returns "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns [redacted], covering encoders that use it (YAML, TOML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
)

// RedactURL strips the userinfo from a URL so it can be logged. It works on
// text that does not parse as a URL too: everything up to the last '@'
// before the query is dropped, which errs on the side of hiding a password
// that contains '/'.
func RedactURL(raw string) string {
	scheme, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		end = i
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + rest
}

// maxSecretFile bounds how much of a secret file is read; a secret is a
// line, and the bound keeps a mistaken path (a log file, a device) harmless.
const maxSecretFile = 64 << 10

// readSecretFile returns the file's content minus one trailing newline.
func readSecretFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	s := string(b)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	}
	return s, nil
}

// secretRef is one env/file pair to resolve.
type secretRef struct {
	path    string // key path prefix, "" or "cameras[0]"
	base    string // password, token, credential
	envName string
	file    string
	dst     *Secret
	// enabled is false for a disabled camera or publisher: its secret need
	// not be provisioned yet, so it is not resolved.
	enabled bool
}

func (r secretRef) key(suffix string) string {
	k := r.base + suffix
	if r.path != "" {
		k = r.path + "." + k
	}
	return k
}

// secretRefs lists every secret in the config.
func secretRefs(c *Config) []secretRef {
	var refs []secretRef
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		refs = append(refs, secretRef{fmt.Sprintf("cameras[%d]", i), "password", cam.PasswordEnv, cam.PasswordFile, &cam.Password, cam.Enabled})
	}
	m := &c.Publish.MQTT
	refs = append(refs, secretRef{"publish.mqtt", "password", m.PasswordEnv, m.PasswordFile, &m.Password, m.Enabled})
	h := &c.Publish.HTTP
	refs = append(refs, secretRef{"publish.http", "token", h.TokenEnv, h.TokenFile, &h.Token, h.Enabled})
	for i := range c.Publish.WebRTC.ICEServers {
		s := &c.Publish.WebRTC.ICEServers[i]
		refs = append(refs, secretRef{fmt.Sprintf("publish.webrtc.ice_servers[%d]", i), "credential", s.CredentialEnv, s.CredentialFile, &s.Credential, c.Publish.WebRTC.Enabled})
	}
	return refs
}

// resolveSecrets fills every Secret from its env variable or file. Problems
// are reported against the *_env or *_file key; values never appear in them.
func resolveSecrets(c *Config, env func(string) (string, bool), report func(path, value, msg string)) {
	for _, r := range secretRefs(c) {
		if !r.enabled && !(r.envName != "" && r.file != "") {
			continue
		}
		switch {
		case r.envName != "" && r.file != "":
			report(r.key("_env"), "", fmt.Sprintf("set only one of %s and %s", r.key("_env"), r.key("_file")))
		case r.envName != "":
			if !validEnvName(r.envName) {
				report(r.key("_env"), r.envName, fmt.Sprintf("%s is not an environment variable name (allowed: letters, digits and _, not starting with a digit)", quote(r.envName)))
				continue
			}
			v, ok := env(r.envName)
			switch {
			case !ok:
				report(r.key("_env"), r.envName, fmt.Sprintf("environment variable %s is not set", r.envName))
			case v == "":
				report(r.key("_env"), r.envName, fmt.Sprintf("environment variable %s is empty", r.envName))
			default:
				*r.dst = Secret{v: v}
			}
		case r.file != "":
			v, err := readSecretFile(r.file)
			switch {
			case err != nil:
				report(r.key("_file"), r.file, fmt.Sprintf("cannot read secret: %v", err))
			case v == "":
				report(r.key("_file"), r.file, fmt.Sprintf("secret file %s is empty", quote(r.file)))
			default:
				*r.dst = Secret{v: v}
			}
		}
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
