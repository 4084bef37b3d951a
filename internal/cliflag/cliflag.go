// Package cliflag is the one command-line grammar of every srdgd
// subcommand: flags may come before, between or after the positional
// arguments ("--" ends the flags); a global flag may follow the subcommand
// (TakeValue); enumerations and scales name their allowed values in errors;
// renamed flags keep working and warn (Deprecated); long runs print a
// progress line now and then.
package cliflag

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NewFlagSet returns a flag set named "srdgd NAME" that reports errors to
// stderr and does not exit.
func NewFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("srdgd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// Parse parses args with fs, accepting flags anywhere among the
// positional arguments (gallery add PHOTO --name bob), and returns the
// positional arguments in order.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// Parse stopped at a positional argument, or just after "--"
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// Scale is --scale: 8 or 16, 0 when not given (when zero is allowed).
type Scale struct {
	V       int
	Allowed []int
}

func (s *Scale) String() string {
	if s == nil || s.V == 0 {
		return ""
	}
	return strconv.Itoa(s.V)
}

func (s *Scale) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || !slices.Contains(s.Allowed, n) {
		return fmt.Errorf("%q is not a scale (allowed: %s)", v, joinInts(s.Allowed, " or "))
	}
	s.V = n
	return nil
}

func joinInts(v []int, last string) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + last + s[len(s)-1]
}

// Enum is a string flag with a fixed set of values.
type Enum struct {
	V       string
	allowed []string
}

func (e *Enum) String() string {
	if e == nil {
		return ""
	}
	return e.V
}

func (e *Enum) Set(v string) error {
	if !slices.Contains(e.allowed, v) {
		return fmt.Errorf("%q is not allowed (allowed: %s)", v, strings.Join(e.allowed, ", "))
	}
	e.V = v
	return nil
}

// NewEnum registers --name with a default and the allowed values (listed
// in the help).
func NewEnum(fs *flag.FlagSet, name, def, usage string, allowed ...string) *Enum {
	e := &Enum{V: def, allowed: allowed}
	fs.Var(e, name, usage+" ("+strings.Join(allowed, ", ")+")")
	return e
}

// Deprecated registers the old flag name old, which still works through
// set and warns on stderr that instead is its replacement.
func Deprecated(fs *flag.FlagSet, stderr io.Writer, old, instead string, set func(string) error) {
	fs.Func(old, "deprecated: use "+instead, func(v string) error {
		fmt.Fprintf(stderr, "%s: warning: --%s is deprecated, use %s\n", fs.Name(), old, instead)
		return set(v)
	})
}

// NoArgs is the error for positional arguments a command does not take.
func NoArgs(stderr io.Writer, cmd string, pos []string) bool {
	if len(pos) == 0 {
		return true
	}
	fmt.Fprintf(stderr, "%s: unexpected argument %q (it takes flags only; see %s --help)\n", cmd, pos[0], cmd)
	return false
}

// Progress prints a line to w every interval while a long SR run goes on
// ("sr: 1200/3000 evaluations (40%), 1m0s, about 1m30s left"); runs that end
// within the first interval print nothing.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	what     string
	t0, last time.Time
	every    time.Duration
	printed  bool
	now      func() time.Time
}

func NewProgress(w io.Writer, what string, every time.Duration) *Progress {
	p := &Progress{w: w, what: what, every: every, now: time.Now}
	p.t0 = p.now()
	p.last = p.t0
	return p
}

// Update is a srdg.Params.Progress.
func (p *Progress) Update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.last) < p.every || total <= 0 {
		return
	}
	p.last = now
	el := now.Sub(p.t0)
	line := fmt.Sprintf("%s: %d/%d evaluations (%d%%), %s", p.what, done, total, 100*done/total, el.Round(time.Second))
	if done > 0 && done < total {
		left := time.Duration(float64(el) * float64(total-done) / float64(done))
		line += fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	fmt.Fprintln(p.w, line)
	p.printed = true
}

// TakeValue removes the flag --name VALUE (or --name=VALUE, -name) from
// anywhere in args before "--", so that a global flag may follow a
// subcommand too; it returns the last value given and the other arguments.
func TakeValue(args []string, name string) (value string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		switch {
		case a == "--"+name || a == "-"+name:
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			value = args[i+1]
			i++
		case strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"="):
			_, value, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	return value, rest, nil
}

// Scales is a comma-separated list of scales (--scale 8,16).
type Scales struct {
	V       []int
	Allowed []int
}

func (s *Scales) String() string {
	if s == nil {
		return ""
	}
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(s.V)), ","), "[]")
}

func (s *Scales) Set(v string) error {
	var out []int
	for _, p := range strings.Split(v, ",") {
		one := Scale{Allowed: s.Allowed}
		if err := one.Set(p); err != nil {
			return err
		}
		out = append(out, one.V)
	}
	s.V = out
	return nil
}

// EnumList is a comma-separated list of allowed values; empty entries are
// dropped, so "" is the empty list.
type EnumList struct {
	V       []string
	allowed []string
}

func (e *EnumList) String() string {
	if e == nil {
		return ""
	}
	return strings.Join(e.V, ",")
}

func (e *EnumList) Set(v string) error {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		one := Enum{allowed: e.allowed}
		if err := one.Set(p); err != nil {
			return err
		}
		out = append(out, p)
	}
	e.V = out
	return nil
}

// NewEnumList registers --name, a list of the allowed values, with a
// default (listed in the help).
func NewEnumList(fs *flag.FlagSet, name string, def []string, usage string, allowed ...string) *EnumList {
	e := &EnumList{V: def, allowed: allowed}
	fs.Var(e, name, usage+" (comma-separated: "+strings.Join(allowed, ", ")+")")
	return e
}
