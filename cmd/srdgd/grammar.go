package main

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

// The one command-line grammar of every subcommand: flags may come before,
// between or after the positional arguments ("--" ends the flags); a scale
// is always --scale 8|16 (the upscaling factor: 8 restores 16x16 faces, 16
// restores 8x8 ones); an error names the flag and its allowed values.

// parseArgs parses args with fs, accepting flags anywhere among the
// positional arguments (gallery add PHOTO --name bob), and returns the
// positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
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

// scales are the upscaling factors the models exist for.
var scales = []int{8, 16}

// scaleFlag is --scale: 8 or 16, 0 when not given (when zero is allowed).
type scaleFlag struct {
	v       int
	allowed []int
}

func (s *scaleFlag) String() string {
	if s == nil || s.v == 0 {
		return ""
	}
	return strconv.Itoa(s.v)
}

func (s *scaleFlag) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || !slices.Contains(s.allowed, n) {
		return fmt.Errorf("%q is not a scale (allowed: %s)", v, joinInts(s.allowed, " or "))
	}
	s.v = n
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

// enumFlag is a string flag with a fixed set of values.
type enumFlag struct {
	v       string
	allowed []string
}

func (e *enumFlag) String() string {
	if e == nil {
		return ""
	}
	return e.v
}

func (e *enumFlag) Set(v string) error {
	if !slices.Contains(e.allowed, v) {
		return fmt.Errorf("%q is not allowed (allowed: %s)", v, strings.Join(e.allowed, ", "))
	}
	e.v = v
	return nil
}

// newEnum registers --name with a default and the allowed values (listed
// in the help).
func newEnum(fs *flag.FlagSet, name, def, usage string, allowed ...string) *enumFlag {
	e := &enumFlag{v: def, allowed: allowed}
	fs.Var(e, name, usage+" ("+strings.Join(allowed, ", ")+")")
	return e
}

// deprecated registers the old flag name old, which still works through
// set and warns on stderr that instead is its replacement.
func deprecated(fs *flag.FlagSet, stderr io.Writer, old, instead string, set func(string) error) {
	fs.Func(old, "deprecated: use "+instead, func(v string) error {
		fmt.Fprintf(stderr, "%s: warning: --%s is deprecated, use %s\n", fs.Name(), old, instead)
		return set(v)
	})
}

// noArgs is the error for positional arguments a command does not take.
func noArgs(stderr io.Writer, cmd string, pos []string) bool {
	if len(pos) == 0 {
		return true
	}
	fmt.Fprintf(stderr, "%s: unexpected argument %q (it takes flags only; see %s --help)\n", cmd, pos[0], cmd)
	return false
}

// progress prints a line to w every interval while a long SR run goes on
// ("sr: 1200/3000 evaluations (40%), 1m0s, about 1m30s left"); runs that end
// within the first interval print nothing.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	what     string
	t0, last time.Time
	every    time.Duration
	printed  bool
	now      func() time.Time
}

func newProgress(w io.Writer, what string, every time.Duration) *progress {
	p := &progress{w: w, what: what, every: every, now: time.Now}
	p.t0 = p.now()
	p.last = p.t0
	return p
}

// Update is a srdg.Params.Progress.
func (p *progress) Update(done, total int) {
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
