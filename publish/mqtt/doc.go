// Package mqtt publishes srdgd's alerts over MQTT so that none is lost.
//
// A Publisher (a publish.Sink) turns each hit into its messages (the hit,
// the match for known faces, the camera's retained last match and face
// image), appends them to a bounded on-disk spool (sealed with the gallery
// key, fsynced, CRC-framed, recovered after a crash, compacted once
// acknowledged, expired after the hit retention) and returns; its Run
// goroutine keeps one
// connection to the broker and delivers the spool in order, removing an
// alert only when the broker acknowledged it. It also publishes retained
// availability (with a last will), camera status, stats and Home Assistant
// discovery. Every JSON payload has a JSON Schema in schema/ (Schemas).
//
// Broker is an embedded broker (mochi-mqtt) for boxes without one; Probe
// checks a broker's address and credentials. See README.md for topics,
// payloads and guarantees.
package mqtt
