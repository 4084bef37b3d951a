package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const fuzzSecret = "fuzz-secret-value"

// FuzzLoadBytes checks that no input panics, that Load returns exactly one
// of a config and an *Errors, that a loaded config validates again, and
// that a secret never reaches a message or a printed config unless the
// input itself contains it. Seeds: every fixture plus the example
// (testdata/fuzz/FuzzLoadBytes, rewritten by -update).
func FuzzLoadBytes(f *testing.F) {
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(Example)
	if *update {
		writeFuzzCorpus(f, paths)
	}
	env := map[string]string{}
	for k := range testEnv {
		env[k] = fuzzSecret
	}
	env["CAM_FRONT_DOOR_PASSWORD"] = fuzzSecret
	env["SRDGD_LOG_LEVEL"] = "debug"
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadBytes("fuzz.yaml", data, lookup(env))
		leakCheck := !bytes.Contains(data, []byte(fuzzSecret))
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error both returned")
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("want a non-empty *Errors, got %T %v", err, err)
			}
			for _, p := range errs.Problems {
				if p.Msg == "" {
					t.Fatalf("problem without message: %#v", p)
				}
			}
			if leakCheck && strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("secret in message: %v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("neither config nor error")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded config does not validate again: %v", err)
		}
		if leakCheck {
			j, _ := json.Marshal(cfg)
			if strings.Contains(fmt.Sprintf("%+v %#v", cfg, cfg), fuzzSecret) || bytes.Contains(j, []byte(fuzzSecret)) {
				t.Fatal("secret in printed config")
			}
		}
	})
}

// writeFuzzCorpus stores the fixtures in the seed corpus format, so the
// committed corpus is rebuilt from them with -update.
func writeFuzzCorpus(f *testing.F, paths []string) {
	dir := filepath.Join("testdata", "fuzz", "FuzzLoadBytes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	seeds := map[string][]byte{"example": Example}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds["fixture-"+strings.TrimSuffix(filepath.Base(p), ".yaml")] = data
	}
	for name, data := range seeds {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}
