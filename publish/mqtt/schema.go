package mqtt

import (
	"embed"
	"io/fs"
)

//go:embed schema/*.schema.json
var schemaFS embed.FS

// Schemas returns the JSON Schemas (draft 2020-12) of every JSON payload,
// by file name ("hit.schema.json", ...), for the HTTP API to serve. The
// map is a fresh copy.
func Schemas() map[string][]byte {
	out := map[string][]byte{}
	ents, _ := fs.ReadDir(schemaFS, "schema")
	for _, e := range ents {
		b, err := schemaFS.ReadFile("schema/" + e.Name())
		if err == nil {
			out[e.Name()] = b
		}
	}
	return out
}

// SchemaFor returns the schema file name for a topic published with the
// given prefixes, or "" for a non-JSON payload (the face image) or a topic
// that is not ours.
func SchemaFor(prefix, haPrefix, topic string) string {
	return schemaForTopic(prefix, haPrefix, topic)
}
