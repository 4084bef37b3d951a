package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/srdgd/srdgd/internal/boundedfile"
)

// MaxFileBytes is the largest config file read (1 MiB; the full example is
// 17 KB). Larger files, and anything that is not a regular file (a device,
// a FIFO, a directory), are refused before reading.
const MaxFileBytes = 1 << 20

// readFile reads a config file within MaxFileBytes, refusing devices, FIFOs
// and directories before reading (internal/boundedfile).
func readFile(path string) ([]byte, error) {
	b, err := boundedfile.Read(path, MaxFileBytes)
	if errors.Is(err, boundedfile.ErrTooLarge) {
		return nil, fmt.Errorf("more than the limit of %d (1 MiB)", MaxFileBytes)
	}
	return b, err
}

// readConfig is readFile for Load and LoadChecked: a problem is an *Errors
// naming the file.
func readConfig(path string) ([]byte, error) {
	data, err := readFile(path)
	if err != nil {
		err = withoutPath(err)
		return nil, &Errors{Problems: []Problem{{File: path, Msg: fmt.Sprintf("cannot read config file: %v", err)}}}
	}
	return data, nil
}

// LoadChecked is Load, then CheckFiles's checks, with file:line for every
// problem. `srdgd config check` and `srdgd run` use it, so that a file the
// daemon would fail to open at start is a config error (exit 3) instead.
func LoadChecked(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return loadWith(path, data, os.LookupEnv, os.Environ(), true)
}

// CheckFiles checks that the files and folders a valid config names exist
// and can be read: TLS certificates, keys and CA bundles, the models folder
// when one is set (else it is searched for: internal/locate), model files and the ONNX Runtime library set
// explicitly, the Haar cascade when the detector is haar, and the gallery key
// file and gallery when they exist (a missing key is allowed: the daemon then
// runs without matching and says so). Secret files are read by Load already.
// Problems carry key paths but no file or line; LoadChecked adds those.
func (c *Config) CheckFiles() error {
	l := newLoader("")
	checkFiles(c, l.report)
	return l.err()
}

func checkFiles(c *Config, report func(path, value, msg string)) {
	file := func(path, p string) {
		if p != "" {
			checkReadable(path, p, false, report)
		}
	}
	if d := c.Storage.ModelsDir; d != "" {
		checkReadable("storage.models_dir", d, true, report)
	}
	file("detect.blazeface_model", c.Detect.BlazefaceModel)
	if c.Detect.Detector == "haar" {
		file("detect.haar_cascade", c.Detect.HaarCascade)
	}
	file("srdg.score_model", c.SRDG.ScoreModel)
	file("srdg.guidance_model", c.SRDG.GuidanceModel)
	file("srdg.attr_model", c.SRDG.AttrModel)
	file("srdg.ort_library", c.SRDG.ORTLibrary)
	file("match.embedder_model", c.Match.EmbedderModel)
	if c.Match.SREmbedderModel != SameEmbedder {
		file("match.sr_embedder_model", c.Match.SREmbedderModel)
	}
	if c.Match.Encrypt {
		if _, err := os.Stat(c.Match.KeyFile); !errors.Is(err, fs.ErrNotExist) {
			file("match.key_file", c.Match.KeyFile)
		}
	}
	if _, err := os.Stat(c.Match.GalleryPath); c.Match.GalleryPath != "" && !errors.Is(err, fs.ErrNotExist) {
		file("match.gallery_path", c.Match.GalleryPath)
	}
	if m := &c.Publish.MQTT; m.Enabled && m.Broker != "" {
		file("publish.mqtt.tls.ca_file", m.TLS.CAFile)
		file("publish.mqtt.tls.cert_file", m.TLS.CertFile)
		file("publish.mqtt.tls.key_file", m.TLS.KeyFile)
	}
	if h := &c.Publish.HTTP; h.Enabled {
		file("publish.http.tls_cert_file", h.TLSCertFile)
		file("publish.http.tls_key_file", h.TLSKeyFile)
	}
}

// checkReadable reports p unless it is a readable regular file (dir false)
// or directory (dir true).
func checkReadable(path, p string, dir bool, report func(path, value, msg string)) {
	want := "a readable file"
	if dir {
		want = "a readable directory"
	}
	st, err := os.Stat(p)
	if err != nil {
		err = withoutPath(err)
		report(path, p, fmt.Sprintf("%s: %v (want %s)", quote(p), err, want))
		return
	}
	switch {
	case dir && !st.IsDir():
		report(path, p, fmt.Sprintf("%s is %s, not a directory", quote(p), boundedfile.Kind(st.Mode())))
		return
	case !dir && !st.Mode().IsRegular():
		report(path, p, fmt.Sprintf("%s is %s, not a regular file", quote(p), boundedfile.Kind(st.Mode())))
		return
	}
	f, err := os.Open(p)
	if err != nil {
		err = withoutPath(err)
		report(path, p, fmt.Sprintf("%s: %v (want %s)", quote(p), err, want))
		return
	}
	f.Close()
}

// withoutPath drops the path of an *fs.PathError: the messages quote the
// path themselves.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
