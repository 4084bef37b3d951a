package srdg

import (
	"fmt"
	"strconv"
	"strings"
)

// attrAliases maps what an operator may type to the models' attribute names.
var attrAliases = map[string]string{
	"male": "male", "gender": "male",
	"glasses": "glasses", "eyeglasses": "glasses",
	"no_beard": "no_beard", "nobeard": "no_beard",
}

// ParseLabels parses an operator's guidance labels ("male=1,glasses=0,nobeard=1",
// as `srdgd sr --attrs` takes them) into labels in the order of
// names (-1 where not given or given as "?").
func ParseLabels(s string, names []string) ([]int, error) {
	labels := make([]int, len(names))
	for i := range labels {
		labels[i] = -1
	}
	if strings.TrimSpace(s) == "" {
		return labels, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("--attrs: %q: want NAME=0|1|? (names: male, glasses, nobeard)", kv)
		}
		name, known := attrAliases[strings.ToLower(strings.TrimSpace(k))]
		if !known {
			return nil, fmt.Errorf("--attrs: unknown attribute %q (known: male, glasses, nobeard)", k)
		}
		idx := -1
		for i, n := range names {
			if n == name {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("--attrs: the guidance model has no %q attribute (it has %s)", name, strings.Join(names, ", "))
		}
		switch strings.TrimSpace(v) {
		case "1":
			labels[idx] = 1
		case "0":
			labels[idx] = 0
		case "?", "-":
			labels[idx] = -1
		default:
			return nil, fmt.Errorf("--attrs: %s=%q: want 0, 1 or ?", k, v)
		}
	}
	return labels, nil
}

// LabelString is a guidance label as ParseLabels reads it: 0, 1 or ? (abstain).
func LabelString(l int) string {
	if l < 0 {
		return "?"
	}
	return strconv.Itoa(l)
}
