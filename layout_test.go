package srdgd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/srdgd/srdgd/"

// stages are the pipeline's stage packages (ARCHITECTURE.md). Each may
// import face and internal/*, never another stage; a stage's sub-packages
// (detect/detecttest) belong to it. The publish/* sinks are stages of their
// own and share only the publish package (the Sink interface and camera
// status), which no other stage may import.
var stages = []string{
	"ingest",
	"detect",
	"srdg",
	"match",
	"publish/history",
	"publish/httpapi",
	"publish/live",
	"publish/metrics",
	"publish/mqtt",
}

// stageOf returns the stage a module package belongs to, "" for none.
func stageOf(pkg string) string {
	for _, s := range stages {
		if pkg == s || strings.HasPrefix(pkg, s+"/") {
			return s
		}
	}
	return ""
}

type listed struct {
	ImportPath string
	Deps       []string
}

// listPackages runs `go list -deps` over the module: every package with
// the project packages it depends on, directly or not (production code: a
// stage's tests may use its real neighbours).
func listPackages(t *testing.T) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-json=ImportPath,Deps", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		name, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		var deps []string
		for _, d := range p.Deps {
			if d, ok := strings.CutPrefix(d, module); ok {
				deps = append(deps, d)
			}
		}
		pkgs[name] = deps
	}
	return pkgs
}

// layoutViolations returns one line per import that breaks the layout.
func layoutViolations(pkgs map[string][]string) []string {
	var bad []string
	for pkg, deps := range pkgs {
		own := stageOf(pkg)
		for _, d := range deps {
			switch ds := stageOf(d); {
			case pkg == "face" && !strings.HasPrefix(d, "internal/"):
				bad = append(bad, "face imports "+d+": it may import only internal/*")
			case own != "" && ds != "" && ds != own:
				bad = append(bad, pkg+" imports "+d+": stage "+own+" must not depend on stage "+ds+" (share types through face, connect stages in internal/app)")
			case own != "" && d == "publish" && !strings.HasPrefix(own, "publish/"):
				bad = append(bad, pkg+" imports publish: only the publish/* sinks share it")
			case d == "config" && !strings.HasPrefix(pkg, "cmd/") && pkg != "internal/app":
				bad = append(bad, pkg+" imports config: only cmd/* and internal/app read the configuration; components take option structs")
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// TestLayout fails on any import between the stages (ingest, detect, srdg,
// match, publish/*), on face importing more than internal/*, and on config
// read outside cmd and internal/app.
func TestLayout(t *testing.T) {
	pkgs := listPackages(t)
	for _, s := range append([]string{"face", "publish", "internal/app", "config"}, stages...) {
		if _, ok := pkgs[s]; !ok {
			t.Errorf("package %s is not in the module: update the layout test's list", s)
		}
	}
	for _, v := range layoutViolations(pkgs) {
		t.Error(v)
	}
}

// TestLayoutCatches: the rules flag what they are meant to (a test that
// cannot fail proves nothing).
func TestLayoutCatches(t *testing.T) {
	cases := []struct {
		pkgs map[string][]string
		want string
	}{
		{map[string][]string{"detect": {"face", "ingest"}}, "detect imports ingest"},
		{map[string][]string{"detect/detecttest": {"srdg"}}, "detect/detecttest imports srdg"},
		{map[string][]string{"publish/live": {"publish", "publish/mqtt"}}, "publish/live imports publish/mqtt"},
		{map[string][]string{"match": {"publish"}}, "match imports publish"},
		{map[string][]string{"face": {"internal/faceimg", "detect"}}, "face imports detect"},
		{map[string][]string{"hwtest": {"config"}}, "hwtest imports config"},
		{map[string][]string{"internal/app": {"config", "detect", "srdg"}, "cmd/srdgd": {"config", "internal/app"}, "publish/mqtt": {"publish", "face"}}, ""},
	}
	for _, c := range cases {
		got := layoutViolations(c.pkgs)
		if c.want == "" {
			if len(got) != 0 {
				t.Errorf("%v: flagged %q", c.pkgs, got)
			}
			continue
		}
		if len(got) != 1 || !strings.HasPrefix(got[0], c.want) {
			t.Errorf("%v: got %q, want one violation starting %q", c.pkgs, got, c.want)
		}
	}
}
