// Package app is the daemon's composition root: it builds the stages from
// the configuration in pipeline order (ingest -> detect -> srdg -> match ->
// publish), holds the only mapping from config to the stages' option
// structs, and supervises what it built (health, drain). The adapters
// between two stages' interfaces live here too, so that no stage imports
// another.
package app
