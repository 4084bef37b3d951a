package hwtest

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Status of one check.
type Status string

// Check statuses. Only StatusFail makes a box unfit; StatusSkip marks a check
// that did not apply (a feature turned off, or a check that needs one that
// failed).
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// Check is the outcome of one check.
type Check struct {
	// Name is stable, for scripts: "onnxruntime", "provider/cuda",
	// "model/score", "srdg", "camera/front_door", "mqtt", "gallery",
	// "disk/state", "disk/spool", "state_dir", "clock".
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Values are what was measured (paths, versions, milliseconds, bytes).
	Values map[string]any `json:"values,omitempty"`
	// ElapsedMS is how long the check took.
	ElapsedMS float64 `json:"elapsed_ms"`
}

// Report is every check's outcome, in the order they ran.
type Report struct {
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	// Fit is false when any check failed.
	Fit    bool    `json:"fit"`
	Checks []Check `json:"checks"`
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }

// Failed lists the names of the failed checks.
func (r *Report) Failed() []string {
	var n []string
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			n = append(n, c.Name)
		}
	}
	return n
}

// Find returns the named check, or nil.
func (r *Report) Find(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: one line per check with its
// status and message, measured values indented below, and a verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "srdgd hwtest on %s at %s\n\n", r.Host, r.Started.Format(time.RFC3339))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.Name, c.Message)
	}
	tw.Flush()
	var details []string
	for _, c := range r.Checks {
		if len(c.Values) == 0 {
			continue
		}
		keys := make([]string, 0, len(c.Values))
		for k := range c.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, c.Values[k])
		}
		details = append(details, fmt.Sprintf("  %s: %s", c.Name, strings.Join(parts, " ")))
	}
	if len(details) > 0 {
		b.WriteString("\nmeasured:\n" + strings.Join(details, "\n") + "\n")
	}
	warns := 0
	for _, c := range r.Checks {
		if c.Status == StatusWarn {
			warns++
		}
	}
	if r.Fit {
		fmt.Fprintf(&b, "\nresult: FIT (%d warning(s))\n", warns)
	} else {
		f := r.Failed()
		fmt.Fprintf(&b, "\nresult: NOT FIT: %d check(s) failed: %s\n", len(f), strings.Join(f, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
