// Package publish owns everything that leaves the box: MQTT alerts
// (publish/mqtt), the WebRTC live view (publish/live), the HTTP API and web
// page (publish/httpapi) and the hit history with its audit log
// (publish/history).
//
// This package holds the types they share: a Hit is one super-resolved face
// with its match outcome, built by the daemon from the pipeline's stages and
// handed to every sink. Sinks never block the pipeline for long: each one
// queues or spools and does its slow work in its own Run.
package publish
