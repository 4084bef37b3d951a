//go:build tools

// Package srdgd pins modules that the design uses and later stages import
// (WebRTC live view, MQTT alerts), so `go mod tidy` keeps the versions verified
// on the target machines. This file is never built.
package srdgd

import (
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/pion/webrtc/v4"
)
