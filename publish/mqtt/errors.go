package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Errors a connection attempt is classified into (test with errors.Is).
var (
	// ErrRefused: nothing accepts connections at the broker address.
	ErrRefused = errors.New("connection refused")
	// ErrAuth: the broker rejected the credentials or the client.
	ErrAuth = errors.New("authentication failed")
	// ErrTLS: the TLS handshake failed (certificate, protocol).
	ErrTLS = errors.New("tls handshake failed")
	// ErrTimeout: the broker did not answer in time.
	ErrTimeout = errors.New("timed out")
	// ErrUnreachable: the host name did not resolve or the network is down.
	ErrUnreachable = errors.New("broker unreachable")
	// ErrProtocol: the peer did not speak MQTT or closed the connection.
	ErrProtocol = errors.New("broker closed the connection or did not speak mqtt")
)

// ConnectError is a failed connection attempt to a broker.
type ConnectError struct {
	// Broker is the broker URL without credentials.
	Broker string
	// Kind is one of the Err* values above (nil when unclassified).
	Kind error
	// Err is the underlying error.
	Err error
}

func (e *ConnectError) Error() string {
	if e.Kind != nil {
		return fmt.Sprintf("mqtt broker %q: connect: %v: %v", e.Broker, e.Kind, e.Err)
	}
	return fmt.Sprintf("mqtt broker %q: connect: %v", e.Broker, e.Err)
}

func (e *ConnectError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// classify names what failed in a connection attempt.
func classify(err error) error {
	var (
		certErr   *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
		alert     tls.AlertError
		dnsErr    *net.DNSError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword),
		errors.Is(err, packets.ErrorRefusedNotAuthorised),
		errors.Is(err, packets.ErrorRefusedIDRejected):
		return ErrAuth
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr), errors.As(err, &alert):
		return ErrTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.As(err, &netErr) && netErr.Timeout():
		return ErrTimeout
	case errors.As(err, &dnsErr), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return ErrUnreachable
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, packets.ErrorRefusedBadProtocolVersion), errors.Is(err, packets.ErrorRefusedServerUnavailable),
		errors.Is(err, packets.ErrorNetworkError):
		return ErrProtocol
	}
	return nil
}
