package config

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the config file name, or "$NAME" when the value came from the
	// environment variable NAME, or "" for a config built in code.
	File string
	// Line is the 1-based line in File, 0 when unknown (the key is absent
	// from the file and its default or an override is at fault).
	Line int
	// Path is the key path, such as cameras[0].transport; "" for problems
	// with the file as a whole (syntax errors).
	Path string
	// Value is the offending value as written (credentials stripped), "" when
	// there is none to show.
	Value string
	// Msg says what is wrong and what is allowed; it quotes Value.
	Msg string
}

// String formats the problem as "file:line: path: msg".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem found while loading a configuration. Load and
// Validate return it as *Errors.
type Errors struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by file (the config file first, then
// environment variables) and line; problems on the same line keep the order
// they were found in.
func sortProblems(ps []Problem, file string) {
	rank := func(p Problem) int {
		if p.File == file {
			return 0
		}
		return 1
	}
	sort.SliceStable(ps, func(i, j int) bool {
		ri, rj := rank(ps[i]), rank(ps[j])
		if ri != rj {
			return ri < rj
		}
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
}

// quote renders a value for a message, shortened so a huge scalar cannot
// flood the error.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}
