package hwtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// checkHTTP checks that the daemon could listen on publish.http.listen: the
// address is this box's and nothing else holds the port. A port held by a
// server that answers srdgd's health endpoint is a running daemon (warn);
// anything else on it would make the daemon fail at start.
func (o *Options) checkHTTP(ctx context.Context) Check {
	h := o.HTTP
	c := Check{Name: "http", Values: map[string]any{"listen": h.Listen}}
	if !h.Enabled {
		c.Status, c.Message = StatusSkip, "publish.http.enabled is false"
		return c
	}
	l, err := net.Listen("tcp", h.Listen)
	if err == nil {
		l.Close()
		c.Status, c.Message = StatusOK, fmt.Sprintf("publish.http.listen %s is free: the web page and API can listen there", h.Listen)
		return c
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		c.Status, c.Message = StatusFail, fmt.Sprintf("publish.http.listen %s cannot be listened on: %v (an address of this box is needed, or 0.0.0.0 with a token)", h.Listen, unwrapOp(err))
		return c
	}
	if o.answersHealth(ctx, h.Listen) {
		c.Status, c.Message = StatusWarn, fmt.Sprintf("publish.http.listen %s is taken by a running srdgd (its /api/v1/health answers); a second daemon could not listen there", h.Listen)
		return c
	}
	c.Status, c.Message = StatusFail, fmt.Sprintf("publish.http.listen %s is taken by another program: the daemon would fail to start (choose another port, or stop that program)", h.Listen)
	return c
}

// answersHealth reports whether an srdgd HTTP API answers at addr (plain
// HTTP; a TLS listener counts as another program).
func (o *Options) answersHealth(ctx context.Context, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/api/v1/health", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	// the health endpoint answers 200 or 503 (and 401 without the token)
	// with JSON
	ct := resp.Header.Get("Content-Type")
	return (resp.StatusCode == 200 || resp.StatusCode == 503 || resp.StatusCode == 401) && len(ct) >= 16 && ct[:16] == "application/json"
}
