package config

import _ "embed"

// Example is the shipped, commented example config (srdgd.example.yaml):
// every key at its default, plus one camera. Installers copy it to
// /etc/srdgd/srdgd.yaml; TestExampleIsDefault keeps it in step with Default.
//
//go:embed srdgd.example.yaml
var Example []byte
