package locate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes the files (relative to root) and returns root.
func tree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func noEnv(string) string { return "" }

// TestModelSearchOrder: each layout finds its own copy, earlier steps win,
// an explicit setting is never replaced by a search.
func TestModelSearchOrder(t *testing.T) {
	cases := []struct {
		name    string
		files   []string
		exe, wd string // relative to the tree
		dir     string // explicit models folder, relative ("" = search)
		env     string // $SRDGD_STORAGE_MODELS_DIR, relative
		want    string // relative path found; "" = not found
	}{
		{"installed prefix beside the binary", []string{"opt/share/srdgd/models/m.onnx", "src/models/dist/m.onnx"},
			"opt/bin/srdgd", "src", "", "", "opt/share/srdgd/models/m.onnx"},
		{"source tree beside the binary", []string{"repo/models/dist/m.onnx", "usr/share/srdgd/models/m.onnx"},
			"repo/bin/srdgd", "empty", "", "", "repo/models/dist/m.onnx"},
		{"install prefix before the working tree", []string{"usr/share/srdgd/models/m.onnx", "wd/models/dist/m.onnx"},
			"lonely/srdgd", "wd", "", "", "usr/share/srdgd/models/m.onnx"},
		{"source tree above the working directory", []string{"repo/models/dist/m.onnx"},
			"lonely/srdgd", "repo/cmd/srdgd", "", "", "repo/models/dist/m.onnx"},
		{"a folder holding the file wins over one without it", []string{"opt/share/srdgd/models/other.onnx", "wd/models/dist/m.onnx"},
			"opt/bin/srdgd", "wd", "", "", "wd/models/dist/m.onnx"},
		{"explicit folder", []string{"mine/m.onnx", "opt/share/srdgd/models/m.onnx"},
			"opt/bin/srdgd", "wd", "mine", "", "mine/m.onnx"},
		{"explicit folder without the file does not fall back", []string{"mine/other.onnx", "opt/share/srdgd/models/m.onnx"},
			"opt/bin/srdgd", "wd", "mine", "", ""},
		{"environment variable", []string{"envdir/m.onnx", "opt/share/srdgd/models/m.onnx"},
			"opt/bin/srdgd", "wd", "", "envdir", "envdir/m.onnx"},
		{"nothing anywhere", nil, "lonely/srdgd", "wd", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := tree(t, append(c.files, "wd/.keep", "empty/.keep", "repo/cmd/srdgd/.keep")...)
			rel := func(p string) string {
				if p == "" {
					return ""
				}
				return filepath.Join(root, p)
			}
			env := noEnv
			if c.env != "" {
				env = func(k string) string {
					if k == EnvModelsDir {
						return rel(c.env)
					}
					return ""
				}
			}
			m := Models{Dir: rel(c.dir), Places: Places{Exe: rel(c.exe), WD: rel(c.wd), Getenv: env, Prefix: rel("usr")}}
			got, err := m.File("srdg.score_model", "", "m.onnx")
			if c.want == "" {
				var nf *NotFoundError
				if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) {
					t.Fatalf("got %q, %v; want a NotFoundError", got, err)
				}
				if nf.Key != "storage.models_dir" || !strings.Contains(err.Error(), "srdg.score_model") {
					t.Errorf("error names %q: %v", nf.Key, err)
				}
				for _, p := range nf.Tried {
					if filepath.Base(p) != "m.onnx" {
						t.Errorf("tried %s", p)
					}
				}
				if len(nf.Tried) == 0 || !strings.Contains(err.Error(), nf.Tried[0]) {
					t.Errorf("error does not list the paths tried: %v", err)
				}
				return
			}
			if err != nil || got != rel(c.want) {
				t.Errorf("got %q, %v; want %s", got, err, rel(c.want))
			}
		})
	}
}

func TestExplicitModelFile(t *testing.T) {
	root := tree(t, "a/m.onnx", "opt/share/srdgd/models/m.onnx")
	m := Models{DirKey: "--models", Places: Places{Exe: filepath.Join(root, "opt/bin/srdgd"), WD: root, Getenv: noEnv}}
	if got, err := m.File("srdg.score_model", filepath.Join(root, "a/m.onnx"), "m.onnx"); err != nil || got != filepath.Join(root, "a/m.onnx") {
		t.Errorf("got %q, %v", got, err)
	}
	// a missing explicit file is an error naming its key, never a search
	_, err := m.File("srdg.score_model", filepath.Join(root, "b/m.onnx"), "m.onnx")
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Key != "srdg.score_model" || len(nf.Tried) != 1 || !strings.Contains(err.Error(), "b/m.onnx") {
		t.Errorf("got %v", err)
	}
	// the folder's key follows DirKey
	_, err = m.File("--score", "", "nope.onnx")
	if !errors.As(err, &nf) || nf.Key != "--models" || !strings.Contains(err.Error(), "--score") {
		t.Errorf("got %v", err)
	}
}

func TestORTLibrarySearchOrder(t *testing.T) {
	lib := ORTLibraryName
	cases := []struct {
		name     string
		files    []string
		exe, wd  string
		explicit string
		env      string
		want     string
	}{
		{"beside the binary", []string{"opt/bin/" + lib, "opt/lib/srdgd/" + lib}, "opt/bin/srdgd", "wd", "", "", "opt/bin/" + lib},
		{"installed prefix of the binary", []string{"opt/lib/srdgd/" + lib, "usr/lib/srdgd/" + lib}, "opt/bin/srdgd", "wd", "", "", "opt/lib/srdgd/" + lib},
		{"source tree of the binary", []string{"repo/third_party/onnxruntime/lib/" + lib, "usr/lib/srdgd/" + lib}, "repo/bin/srdgd", "wd", "", "", "repo/third_party/onnxruntime/lib/" + lib},
		{"install prefix", []string{"usr/lib/srdgd/" + lib, "wd/third_party/onnxruntime/lib/" + lib}, "lonely/srdgd", "wd", "", "", "usr/lib/srdgd/" + lib},
		{"working tree", []string{"repo/third_party/onnxruntime/lib/" + lib}, "lonely/srdgd", "repo/cmd/srdgd", "", "", "repo/third_party/onnxruntime/lib/" + lib},
		{"explicit", []string{"x/libort.so", "opt/bin/" + lib}, "opt/bin/srdgd", "wd", "x/libort.so", "", "x/libort.so"},
		{"explicit missing", []string{"opt/bin/" + lib}, "opt/bin/srdgd", "wd", "x/libort.so", "", ""},
		{"environment", []string{"e/libort.so", "opt/bin/" + lib}, "opt/bin/srdgd", "wd", "", "e/libort.so", "e/libort.so"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := tree(t, append(c.files, "wd/.keep", "repo/cmd/srdgd/.keep")...)
			rel := func(p string) string {
				if p == "" {
					return ""
				}
				return filepath.Join(root, p)
			}
			env := func(k string) string {
				if k == EnvORTLibrary {
					return rel(c.env)
				}
				return ""
			}
			got, err := ORTLibrary(Places{Exe: rel(c.exe), WD: rel(c.wd), Getenv: env, Prefix: rel("usr")}, "", rel(c.explicit))
			if c.want == "" {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "srdg.ort_library") || !strings.Contains(err.Error(), rel(c.explicit)) {
					t.Errorf("got %q, %v", got, err)
				}
				return
			}
			if err != nil || got != rel(c.want) {
				t.Errorf("got %q, %v; want %s", got, err, rel(c.want))
			}
		})
	}
}

// A link to the binary (~/bin/srdgd -> the source tree's bin/srdgd) finds
// the files of the tree the binary is in.
func TestBinaryLinkResolved(t *testing.T) {
	root := tree(t, "repo/bin/srdgd", "repo/models/dist/m.onnx", "home/bin/.keep")
	link := filepath.Join(root, "home/bin/srdgd")
	if err := os.Symlink(filepath.Join(root, "repo/bin/srdgd"), link); err != nil {
		t.Fatal(err)
	}
	m := Models{Places: Places{Exe: link, WD: filepath.Join(root, "home"), Getenv: noEnv, Prefix: filepath.Join(root, "usr")}}
	if got, err := m.File("k", "", "m.onnx"); err != nil || got != filepath.Join(root, "repo/models/dist/m.onnx") {
		t.Errorf("got %q, %v", got, err)
	}
}
