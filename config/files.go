package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileBytes is the largest config file read (1 MiB; the full example is
// 17 KB). Larger files, and anything that is not a regular file (a device,
// a FIFO, a directory), are refused before reading.
const MaxFileBytes = 1 << 20

// readFile reads a config file within MaxFileBytes. It opens without
// blocking, so that a FIFO is refused instead of waiting for a writer.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fileKind(st.Mode()))
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d (1 MiB)", st.Size(), MaxFileBytes)
	}
	// the file may grow while it is read
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("more than the limit of %d bytes (1 MiB)", MaxFileBytes)
	}
	return b, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// LoadChecked is Load, then CheckFiles's checks, with file:line for every
// problem. `srdgd config check` and `srdgd run` use it, so that a file the
// daemon would fail to open at start is a config error (exit 3) instead.
func LoadChecked(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Errors{Problems: []Problem{{File: path, Msg: fmt.Sprintf("cannot read config file: %v", err)}}}
	}
	return loadWith(path, data, os.LookupEnv, os.Environ(), true)
}

// CheckFiles checks that the files and folders a valid config names exist
// and can be read: TLS certificates, keys and CA bundles, the models folder
// when it is not the default one (the default may be missing: the binary then
// looks in ./models/dist), model files and the ONNX Runtime library set
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
	if d := c.Storage.ModelsDir; d != "" && d != Default().Storage.ModelsDir {
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
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		report(path, p, fmt.Sprintf("%s: %v (want %s)", quote(p), err, want))
		return
	}
	switch {
	case dir && !st.IsDir():
		report(path, p, fmt.Sprintf("%s is %s, not a directory", quote(p), describeMode(st.Mode())))
		return
	case !dir && !st.Mode().IsRegular():
		report(path, p, fmt.Sprintf("%s is %s, not a regular file", quote(p), fileKind(st.Mode())))
		return
	}
	f, err := os.Open(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		report(path, p, fmt.Sprintf("%s: %v (want %s)", quote(p), err, want))
		return
	}
	f.Close()
}

func describeMode(m fs.FileMode) string {
	if m.IsRegular() {
		return "a regular file"
	}
	return fileKind(m)
}
