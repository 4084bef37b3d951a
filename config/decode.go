package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path (a regular file of at most
// MaxFileBytes): defaults, then the file, then environment overrides, then
// secrets, then validation. On any problem it returns nil and an *Errors
// listing all of them. It does not look at the files the config names
// (LoadChecked does).
func Load(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return load(path, data, os.LookupEnv, os.Environ())
}

// DefaultPath is $SRDGD_CONFIG, else the installed location
// (/etc/srdgd/srdgd.yaml).
func DefaultPath() string {
	if p := os.Getenv("SRDGD_CONFIG"); p != "" {
		return p
	}
	return "/etc/srdgd/srdgd.yaml"
}

// DemoStateDir is where `srdgd demo` keeps its state by default: the user's
// cache folder, else the temporary one.
func DemoStateDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "srdgd-demo")
	}
	return filepath.Join(os.TempDir(), "srdgd-demo")
}

// LoadOrDefault loads the config file at path, or at DefaultPath when path
// is "". When neither path nor $SRDGD_CONFIG names a file and none is at the
// installed location, it returns the defaults (the offline commands run on a
// box without a config).
func LoadOrDefault(path string) (*Config, error) {
	explicit := path != "" || os.Getenv("SRDGD_CONFIG") != ""
	if path == "" {
		path = DefaultPath()
	}
	if _, err := os.Stat(path); err != nil && !explicit {
		return Default(), nil
	}
	return Load(path)
}

// LoadBytes is Load for a file already in memory. name labels problems; env
// looks up environment variables for overrides and *_env secrets (nil means
// an empty environment). Unlike Load it does not check for stray SRDGD_*
// variables, because env cannot list them.
func LoadBytes(name string, data []byte, env func(string) (string, bool)) (*Config, error) {
	return load(name, data, env, nil)
}

func load(name string, data []byte, env func(string) (string, bool), environ []string) (*Config, error) {
	return loadWith(name, data, env, environ, false)
}

// loadWith is load, with checkFiles's checks after validation when files is
// set (skipped when the config is invalid: its paths may be wrong too).
func loadWith(name string, data []byte, env func(string) (string, bool), environ []string, files bool) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	l := newLoader(name)
	cfg := Default()
	if !l.decodeFile(data, cfg) {
		return nil, l.err()
	}
	l.applyEnv(cfg, env)
	resolveSecrets(cfg, env, l.report)
	if environ != nil {
		l.checkEnviron(cfg, environ)
	}
	validate(cfg, l.report)
	if err := l.err(); err != nil {
		return nil, err
	}
	if files {
		checkFiles(cfg, l.report)
		if err := l.err(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Validate checks a config built in code (Load already validates). Secrets
// are not resolved; problems carry key paths but no file or line.
func (c *Config) Validate() error {
	l := newLoader("")
	validate(c, l.report)
	return l.err()
}

// loc is where a key's value came from.
type loc struct {
	file string
	line int
}

// loader collects problems and remembers where each key path was set, so
// that validation problems found later can point at the right line.
type loader struct {
	file  string
	probs []Problem
	locs  map[string]loc
	// bad holds paths that already have a decode problem; validation does
	// not report them (or anything below them) a second time.
	bad map[string]bool
}

func newLoader(file string) *loader {
	return &loader{file: file, locs: map[string]loc{}, bad: map[string]bool{}}
}

func (l *loader) err() error {
	if len(l.probs) == 0 {
		return nil
	}
	sortProblems(l.probs, l.file)
	return &Errors{Problems: l.probs}
}

// add records a decode problem at a known place.
func (l *loader) add(file string, line int, path, value, msg string) {
	l.probs = append(l.probs, Problem{File: file, Line: line, Path: path, Value: value, Msg: msg})
	if path != "" {
		l.bad[path] = true
	}
}

// report records a problem found after decoding, located at the closest
// enclosing key that the file (or an override) set.
func (l *loader) report(path, value, msg string) {
	for p := path; p != ""; p = parentPath(p) {
		if l.bad[p] {
			return
		}
	}
	at := loc{file: l.file}
	for p := path; p != ""; p = parentPath(p) {
		if x, ok := l.locs[p]; ok {
			at = x
			break
		}
	}
	l.probs = append(l.probs, Problem{File: at.file, Line: at.line, Path: path, Value: value, Msg: msg})
}

// parentPath strips the last segment: a.b[2].c -> a.b[2] -> a.b -> a -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax records a YAML parser error, keeping its line.
func (l *loader) syntax(err error) {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.add(l.file, line, "", "", "YAML syntax error: "+m[2])
		return
	}
	l.add(l.file, 0, "", "", "YAML syntax error: "+strings.TrimPrefix(msg, "yaml: "))
}

// decodeFile parses data and decodes it over cfg. It returns false when the
// file cannot be read as a version 1 config at all (syntax error, empty
// file, other version); the remaining steps are then skipped.
func (l *loader) decodeFile(data []byte, cfg *Config) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(l.file, 0, "", "", "the file is empty; it needs at least \"version: 1\"")
		} else {
			l.syntax(err)
		}
		return false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.add(l.file, extra.Line, "", "", "a second YAML document; the file must hold exactly one")
		return false
	} else if !errors.Is(err, io.EOF) {
		l.syntax(err)
		return false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || isNull(doc.Content[0]) {
		l.add(l.file, 0, "", "", "the file is empty; it needs at least \"version: 1\"")
		return false
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.add(l.file, root.Line, "", "", fmt.Sprintf("the file must be a mapping of keys (version, log, cameras, ...), got %s", describe(root)))
		return false
	}
	if !l.checkVersion(root) {
		return false
	}
	d := decoder{l: l, src: l.file}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	return true
}

// checkVersion looks at the version key before anything else: a file for
// another schema version would only produce confusing unknown-key problems.
func (l *loader) checkVersion(root *yaml.Node) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "version" {
			continue
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" && v.Value == strconv.Itoa(Version) {
			return true
		}
		val := v.Value
		if v.Kind != yaml.ScalarNode {
			val = ""
		}
		l.add(l.file, k.Line, "version", val, fmt.Sprintf("%s is not supported (supported: %d)", describe(v), Version))
		return false
	}
	l.add(l.file, root.Line, "version", "", fmt.Sprintf("missing; the file must start with \"version: %d\"", Version))
	// Keep going: a v1 file that forgot the line is still worth checking.
	return true
}

// decoder walks a yaml.Node against a Go value, checking every key and
// type, and records problems instead of stopping.
type decoder struct {
	l   *loader
	src string // file name, or "$NAME" for an environment override
}

var durationType = reflect.TypeOf(time.Duration(0))

func (d decoder) fail(n *yaml.Node, path, value, msg string) {
	d.l.add(d.src, n.Line, path, value, msg)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node for a message: a scalar by its quoted value.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if isNull(n) {
		return "nothing (null)"
	}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool":
		if len(n.Value) <= 64 {
			return n.Value
		}
	case "!!str":
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			// "1024" for a number: the quotes are the mistake.
			return quote(n.Value) + " (quoted, so a string)"
		}
	}
	return quote(n.Value)
}

func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

func (d decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "", "YAML aliases (*name) are not supported; write the value out")
		return
	}
	if tag := n.Tag; n.Kind == yaml.ScalarNode && strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") && tag != "!" {
		d.fail(n, path, "", fmt.Sprintf("YAML tag %s is not supported", quote(tag)))
		return
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.list(n, v, path)
	case reflect.Map:
		d.dict(n, v, path)
	case reflect.String:
		switch {
		case isNull(n):
			v.SetString("")
		case n.Kind != yaml.ScalarNode:
			d.fail(n, path, "", fmt.Sprintf("want a string, got %s", describe(n)))
		case n.ShortTag() == "!!binary":
			d.fail(n, path, "", "binary values are not supported; want a string")
		default:
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, scalarValue(n), fmt.Sprintf("%s is not a boolean (allowed: true, false)", describe(n)))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, n.Value, fmt.Sprintf("%s is not a boolean (allowed: true, false)", describe(n)))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(n, path, scalarValue(n), fmt.Sprintf("%s is not an integer", describe(n)))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			d.fail(n, path, n.Value, fmt.Sprintf("%s is not an integer", describe(n)))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, n.Value, fmt.Sprintf("%s is out of range for an integer", describe(n)))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") {
			d.fail(n, path, scalarValue(n), fmt.Sprintf("%s is not a number", describe(n)))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			d.fail(n, path, n.Value, fmt.Sprintf("%s is not a number", describe(n)))
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a field of an unsupported kind is added to the
		// schema; TestSchemaKinds keeps that from happening.
		d.fail(n, path, "", fmt.Sprintf("internal: unsupported field kind %s", v.Kind()))
	}
}

func (d decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	const want = `want a Go duration such as "500ms", "10s" or "1h30m"`
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.fail(n, path, scalarValue(n), fmt.Sprintf("%s is not a duration (%s)", describe(n), want))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, n.Value, fmt.Sprintf("%s is not a duration (%s)", describe(n), want))
		return
	}
	v.SetInt(int64(dur))
}

// field is one decodable struct field.
type field struct {
	name  string
	index int
}

// fields lists the keys of a struct type in declaration order.
func fields(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fs = append(fs, field{name: tag, index: i})
	}
	return fs
}

// keys walks the pairs of a mapping node, rejecting non-string and
// duplicate keys, and calls fn for the others.
func (d decoder) keys(n *yaml.Node, path string, fn func(key string, k, val *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.fail(k, path, "", fmt.Sprintf("keys must be strings, got %s", describe(k)))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.fail(k, path, "", "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, childPath(path, k.Value), "", fmt.Sprintf("duplicate key (first set on line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, val)
	}
}

func (d decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "log:" with nothing under it keeps the defaults
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, scalarValue(n), fmt.Sprintf("want a mapping of keys, got %s", describe(n)))
		return
	}
	fs := fields(v.Type())
	d.keys(n, path, func(key string, k, val *yaml.Node) {
		p := childPath(path, key)
		for _, f := range fs {
			if f.name == key {
				d.l.locs[p] = loc{file: d.src, line: k.Line}
				d.decode(val, v.Field(f.index), p)
				return
			}
		}
		d.fail(k, p, "", unknownKeyMsg(key, fs))
	})
}

// unknownKeyMsg explains an unknown key. A key such as "password" next to
// password_env is an inline secret, which gets its own advice; the value is
// never echoed, since a misspelt key may well hold a password.
func unknownKeyMsg(key string, fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	for _, f := range fs {
		if f.name == key+"_env" {
			return fmt.Sprintf("secrets are never written inline; name an environment variable in %s_env or a file in %s_file", key, key)
		}
	}
	if s := closest(key, names); s != "" {
		return fmt.Sprintf("unknown key, did you mean %s? (allowed: %s)", s, strings.Join(names, ", "))
	}
	return fmt.Sprintf("unknown key (allowed: %s)", strings.Join(names, ", "))
}

// closest returns the candidate nearest to s, if it is within one edit per
// three characters of s (so "z" does not suggest "x").
func closest(s string, candidates []string) string {
	best, bestD := "", len(s)/3+1
	for _, c := range candidates {
		if dist := editDistance(s, c, bestD); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, or limit when it
// is at least limit (long fuzzed keys stay cheap).
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// newItem returns the value a list entry starts from.
func newItem(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	if t == reflect.TypeOf(Camera{}) {
		v.Set(reflect.ValueOf(DefaultCamera()))
	}
	return v
}

func (d decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, scalarValue(n), fmt.Sprintf("want a list, got %s", describe(n)))
		return
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.l.locs[p] = loc{file: d.src, line: item.Line}
		e := newItem(v.Type().Elem())
		d.decode(item, e, p)
		out = reflect.Append(out, e)
	}
	v.Set(out)
}

func (d decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, scalarValue(n), fmt.Sprintf("want a mapping, got %s", describe(n)))
		return
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	d.keys(n, path, func(key string, k, val *yaml.Node) {
		p := childPath(path, key)
		d.l.locs[p] = loc{file: d.src, line: k.Line}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, p)
		out.SetMapIndex(reflect.ValueOf(key), e)
	})
	v.Set(out)
}

// envPrefix starts every override variable.
const envPrefix = "SRDGD_"

// envConfigVar is left to cmd/srdgd (the config file path) and is never an
// override.
const envConfigVar = "SRDGD_CONFIG"

func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// overridable walks the keys an environment variable may set: scalars and
// lists of strings outside lists, except version.
func overridable(v reflect.Value, path string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for _, f := range fields(t) {
		p := childPath(path, f.name)
		fv := v.Field(f.index)
		switch {
		case p == "version", fv.Kind() == reflect.Map:
		case fv.Kind() == reflect.Slice:
			if fv.Type().Elem().Kind() == reflect.String {
				fn(p, fv)
			}
		case fv.Kind() == reflect.Struct:
			overridable(fv, p, fn)
		default:
			fn(p, fv)
		}
	}
}

// EnvNames lists every environment override variable, in schema order.
func EnvNames() []string {
	var names []string
	overridable(reflect.ValueOf(Default()).Elem(), "", func(path string, _ reflect.Value) {
		names = append(names, envName(path))
	})
	return names
}

// applyEnv decodes each override that is set as if it were written in the
// file, so the same type checks apply.
func (l *loader) applyEnv(cfg *Config, env func(string) (string, bool)) {
	overridable(reflect.ValueOf(cfg).Elem(), "", func(path string, v reflect.Value) {
		name := envName(path)
		val, ok := env(name)
		if !ok {
			return
		}
		d := decoder{l: l, src: "$" + name}
		l.locs[path] = loc{file: d.src}
		var n *yaml.Node
		if v.Kind() == reflect.Slice {
			n = &yaml.Node{Kind: yaml.SequenceNode}
			if strings.TrimSpace(val) != "" {
				for _, s := range strings.Split(val, ",") {
					n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(s)})
				}
			}
		} else {
			n = &yaml.Node{Kind: yaml.ScalarNode, Value: val}
		}
		d.decode(n, v, path)
	})
}

// reservedEnv: SRDGD_TEST_* and SRDGD_BENCH_* belong to the test suite and
// the benchmarks (they tell them where data is or what to require), never to
// the daemon's configuration.
func reservedEnv(name string) bool {
	return strings.HasPrefix(name, envPrefix+"TEST_") || strings.HasPrefix(name, envPrefix+"BENCH_")
}

// checkEnviron reports SRDGD_* variables that are neither overrides nor
// secrets named by the file: a misspelt override must not pass silently.
func (l *loader) checkEnviron(cfg *Config, environ []string) {
	known := map[string]bool{envConfigVar: true}
	names := EnvNames()
	for _, n := range names {
		known[n] = true
	}
	for _, r := range secretRefs(cfg) {
		known[r.envName] = true
	}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || known[name] || reservedEnv(name) {
			continue
		}
		msg := "unknown override variable (overrides are SRDGD_ plus the key path upper-cased with _ for ., such as SRDGD_LOG_LEVEL)"
		if s := closest(name, names); s != "" {
			msg = fmt.Sprintf("unknown override variable, did you mean %s?", s)
		}
		l.add("$"+name, 0, "", "", msg)
	}
}
