// Package face holds the types that travel between the daemon's stages, and
// their one JSON shape:
//
//	ingest  -> Frame, AccessUnit   (decoded pictures, coded pictures for the live view)
//	detect  -> Probe               (shots of a track, cut as LR probes; track-end notices)
//	srdg    -> Shot                (a probe after super-resolution, with its attributes)
//	match   -> Hit, Visit          (a shot with its decision; a track's shots fused into one visit)
//
// Every stage (ingest, detect, srdg, match, publish/*) imports this package
// and never another stage; the composition root (internal/app) connects
// them. The package imports nothing of the project but internal/*.
//
// A Hit has one JSON shape, written by the history, the HTTP API, MQTT and
// the live view's data channel alike; those add an envelope (a schema
// number, image links or inline images) around it and change nothing in it.
package face
