// Package locate finds the files srdgd ships with, the model set (with the
// demo's faces in its demo/ folder) and the ONNX Runtime library, by one
// search order that every command uses (run, demo, sr, detect, gallery,
// eval, hwtest), so that the binary works from any working directory:
//
//  1. the explicit setting: a flag, a config key (storage.models_dir,
//     srdg.ort_library, a model's own key) or its SRDGD_ environment
//     variable. Nothing else is tried when one is set.
//  2. beside the binary: the layout of its own install prefix
//     (<bin>/../share/srdgd/models, <bin>/../lib/srdgd) and of a source
//     tree (<bin>/../models/dist, <bin>/../third_party/onnxruntime/lib, for
//     bin/srdgd after `make build`). The binary's path has its symbolic
//     links resolved, so a link to it in ~/bin still finds them.
//  3. the install prefix of scripts/install.sh and the .deb:
//     /usr/share/srdgd/models, /usr/lib/srdgd.
//  4. a source tree around the working directory: models/dist and
//     third_party/onnxruntime/lib in it and in each folder above it.
//  5. for ONNX Runtime only, the system's library folders.
//
// A model is taken from the first folder that holds it; when none does, the
// error names the config key to set and every path tried.
package locate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ORTLibraryName is the ONNX Runtime library looked for.
const ORTLibraryName = "libonnxruntime.so.1"

// The environment variables of the two folder settings, as the config names
// them (config overrides), read here too for the commands that take no
// config file (sr, detect, eval).
const (
	EnvModelsDir  = "SRDGD_STORAGE_MODELS_DIR"
	EnvORTLibrary = "SRDGD_SRDG_ORT_LIBRARY"
)

// Places is where the search starts from; the zero value is this process.
type Places struct {
	// Exe is the binary's path; "" is os.Executable with links resolved.
	Exe string
	// WD is the working directory; "" is os.Getwd.
	WD string
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
	// Prefix is the install prefix of step 3; "" is /usr (tests change it).
	Prefix string
}

func (p Places) prefix() string {
	if p.Prefix == "" {
		return "/usr"
	}
	return p.Prefix
}

func (p Places) exeDir() string {
	exe := p.Exe
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return ""
		}
		exe = e
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	if a, err := filepath.Abs(exe); err == nil {
		exe = a
	}
	return filepath.Dir(exe)
}

func (p Places) wd() string {
	if p.WD != "" {
		return p.WD
	}
	wd, _ := os.Getwd()
	return wd
}

func (p Places) getenv(k string) string {
	if p.Getenv != nil {
		return p.Getenv(k)
	}
	return os.Getenv(k)
}

// upwards returns rel joined to dir and to each folder above it.
func upwards(dir, rel string) []string {
	if dir == "" {
		return nil
	}
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		out = append(out, filepath.Join(d, rel))
		if filepath.Dir(d) == d {
			return out
		}
	}
}

// ModelDirs are the folders searched for models when none is set (steps 2
// to 4), in order, without repeats.
func (p Places) ModelDirs() []string {
	var c []string
	if d := p.exeDir(); d != "" {
		c = append(c, filepath.Join(d, "..", "share", "srdgd", "models"), filepath.Join(d, "..", "models", "dist"))
	}
	c = append(c, filepath.Join(p.prefix(), "share", "srdgd", "models"))
	c = append(c, upwards(p.wd(), filepath.Join("models", "dist"))...)
	return dedup(c)
}

// ORTLibraries are the library files searched when none is set (steps 2 to
// 5), in order, without repeats.
func (p Places) ORTLibraries() []string {
	var c []string
	if d := p.exeDir(); d != "" {
		c = append(c, filepath.Join(d, ORTLibraryName),
			filepath.Join(d, "..", "lib", "srdgd", ORTLibraryName),
			filepath.Join(d, "..", "third_party", "onnxruntime", "lib", ORTLibraryName))
	}
	c = append(c, filepath.Join(p.prefix(), "lib", "srdgd", ORTLibraryName))
	c = append(c, upwards(p.wd(), filepath.Join("third_party", "onnxruntime", "lib", ORTLibraryName))...)
	c = append(c, "/usr/local/lib/"+ORTLibraryName, "/usr/local/lib/libonnxruntime.so",
		"/usr/lib/x86_64-linux-gnu/"+ORTLibraryName, "/usr/lib/aarch64-linux-gnu/"+ORTLibraryName)
	return dedup(c)
}

func dedup(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = filepath.Clean(p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// ErrNotFound is what every NotFoundError is (errors.Is).
var ErrNotFound = errors.New("not found")

// NotFoundError says what was looked for, where, and which setting to change.
type NotFoundError struct {
	// Key is the setting that would fix it ("storage.models_dir").
	Key string
	// What was looked for ("score_x8.onnx", "demo/manifest.json").
	What string
	// Tried are the paths looked at, in order.
	Tried []string
	// Hint is what else may help; may be empty.
	Hint string
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s not found; tried %s", e.Key, e.What, strings.Join(e.Tried, ", "))
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

// isFile reports whether p is an existing file that is not a folder.
func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Models searches for model files: in Dir when set, else in the folders of
// Places.ModelDirs.
type Models struct {
	// Dir is the models folder set explicitly; "" searches (an empty Dir
	// falls back to $SRDGD_STORAGE_MODELS_DIR).
	Dir string
	// DirKey names the setting of Dir in messages: "storage.models_dir"
	// (the default) or a flag such as "--models".
	DirKey string
	Places Places
}

func (m Models) dirKey() string {
	if m.DirKey == "" {
		return "storage.models_dir"
	}
	return m.DirKey
}

// Dirs are the folders searched, in order: the explicit one alone, else the
// search order.
func (m Models) Dirs() []string {
	if m.Dir != "" {
		return []string{filepath.Clean(m.Dir)}
	}
	if d := m.Places.getenv(EnvModelsDir); d != "" {
		return []string{filepath.Clean(d)}
	}
	return m.Places.ModelDirs()
}

// File returns a model: explicit (the value of the config key or flag key)
// when set, else the first searched folder that holds name. The error names
// key for a missing explicit file, else the models folder's setting.
func (m Models) File(key, explicit, name string) (string, error) {
	if explicit != "" {
		if isFile(explicit) {
			return explicit, nil
		}
		return "", &NotFoundError{Key: key, What: "the model file " + explicit, Tried: []string{explicit},
			Hint: "set " + key + " to an existing file, or leave it empty to search for " + filepath.Base(explicit) + " in " + m.dirKey()}
	}
	return m.Find(name, "set "+m.dirKey()+" to a folder holding it or "+key+" to the file; `make models` builds the default set in models/dist")
}

// Find returns the first searched folder's rel (a file) that exists, with
// hint in the error when none does.
func (m Models) Find(rel, hint string) (string, error) {
	dirs := m.Dirs()
	tried := make([]string, 0, len(dirs))
	for _, d := range dirs {
		p := filepath.Join(d, rel)
		if isFile(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", &NotFoundError{Key: m.dirKey(), What: rel, Tried: tried, Hint: hint}
}

// ORTLibrary returns the ONNX Runtime library: explicit (the value of key)
// when set, else $SRDGD_SRDG_ORT_LIBRARY, else the first of
// Places.ORTLibraries that exists.
func ORTLibrary(p Places, key, explicit string) (string, error) {
	if key == "" {
		key = "srdg.ort_library"
	}
	if explicit == "" {
		explicit = p.getenv(EnvORTLibrary)
	}
	if explicit != "" {
		if isFile(explicit) {
			return explicit, nil
		}
		return "", &NotFoundError{Key: key, What: "the ONNX Runtime library " + explicit, Tried: []string{explicit},
			Hint: "set " + key + " to an existing libonnxruntime.so.1, or leave it empty to search"}
	}
	cands := p.ORTLibraries()
	for _, c := range cands {
		if isFile(c) {
			return c, nil
		}
	}
	return "", &NotFoundError{Key: key, What: ORTLibraryName, Tried: cands,
		Hint: "run scripts/fetch-ort.sh in the source tree, or set " + key}
}
