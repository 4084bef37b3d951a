package ingest

import (
	"net/url"
	"strings"
)

// redactor removes credentials from text that may reach logs or errors: the
// gortsplib and net/url errors can quote a request URL.
type redactor struct {
	secrets []string
}

func newRedactor(password string) redactor {
	var r redactor
	if password != "" {
		r.secrets = append(r.secrets, password)
		if esc := url.QueryEscape(password); esc != password {
			r.secrets = append(r.secrets, esc)
		}
		if esc := url.PathEscape(password); esc != password {
			r.secrets = append(r.secrets, esc)
		}
	}
	return r
}

func (r redactor) string(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "xxxxx")
	}
	return s
}

// err wraps err so that its message is redacted while errors.Is/As still see
// the original chain.
func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := r.string(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// safeURL renders u without userinfo.
func safeURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
