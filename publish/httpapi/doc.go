// Package httpapi serves the daemon's HTTP API (JSON, versioned under
// /api/v1), its embedded web page, the WebRTC live view's WHEP endpoints
// (handed in by the daemon) and the Prometheus metrics, behind one bearer
// token.
//
// The package owns no data: hits, the audit log, the gallery and camera
// status come from the small interfaces declared here (Hits, Auditor,
// Gallery), which the daemon adapts from publish/history and match. Every
// access to a hit and every gallery change is written to the Auditor before
// the response leaves; when the audit write fails the request fails.
package httpapi
