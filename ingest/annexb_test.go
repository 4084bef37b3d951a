package ingest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// readAccessUnits loads an Annex-B elementary stream written with access unit
// delimiters (ffmpeg -bsf:v h264_metadata=aud=insert / hevc_metadata) and splits
// it into access units, dropping the delimiters.
func readAccessUnits(t testing.TB, name, codec string) [][][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB // the start code syntax is the same for H.265
	if err := nalus.Unmarshal(raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var aus [][][]byte
	for _, n := range nalus {
		aud := n[0]&0x1f == 9
		if codec == CodecH265 {
			aud = (n[0]>>1)&0x3f == 35
		}
		if aud {
			aus = append(aus, nil)
			continue
		}
		if len(aus) == 0 {
			aus = append(aus, nil)
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], n)
	}
	return aus
}
