// Command srdgd is the edge daemon: RTSP cameras -> tiny faces -> SRDG
// super-resolution -> gallery match -> MQTT alerts and a WebRTC live view.
// Subcommands and exit codes are listed by `srdgd help` and in the README.
package main

import "os"

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }
