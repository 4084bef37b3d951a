package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/match"
)

// galleryFeedback is `srdgd gallery feedback HIT VERDICT [NAME]`: the
// operator's verdict on a hit in the history, stored as the API stores it
// (a template per person, audited as hit.feedback).
func galleryFeedback(ctx context.Context, env *app.Gallery, args []string, stdout, stderr io.Writer) int {
	const usage = "usage: srdgd gallery feedback HIT_ID confirm|reject|not_enrolled [NAME]\n" +
		"  confirm NAME: the hit is NAME; reject [NAME]: it is not NAME (default: the person it named, else its top candidate);\n" +
		"  not_enrolled: it is nobody enrolled (rejects its named person and top candidate)"
	id, verdict, person := args[0], args[1], ""
	if len(args) == 3 {
		person = args[2]
	}
	stored, err := env.Feedback(ctx, id, verdict, person)
	for _, s := range stored {
		fmt.Fprintf(stdout, "%s %s: template %d (hit %s)\n", verdict, s.Person, s.Template, id)
	}
	if ue := (app.UsageError{}); errors.As(err, &ue) {
		fmt.Fprintf(stderr, "srdgd gallery feedback: %v\n%s\n", err, usage)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintln(stderr, "srdgd gallery feedback:", err)
		return exitFailure
	}
	return exitOK
}

// galleryWatchlist is `srdgd gallery watchlist NAME on|off`.
func galleryWatchlist(ctx context.Context, env *app.Gallery, args []string, stdout, stderr io.Writer) int {
	if args[1] != "on" && args[1] != "off" {
		fmt.Fprintln(stderr, "usage: srdgd gallery watchlist NAME on|off")
		return exitUsage
	}
	if err := env.SetWatchlist(ctx, args[0], args[1] == "on"); err != nil {
		return galleryFail(stderr, err)
	}
	fmt.Fprintf(stdout, "watchlist %s: %s\n", args[1], args[0])
	return exitOK
}

// galleryThreshold sets or clears a person's threshold override (audited
// "gallery.override", as from the API).
func galleryThreshold(ctx context.Context, env *app.Gallery, c *galleryArgs, stdout, stderr io.Writer) int {
	const usage = "usage: srdgd gallery threshold NAME --offset X [--margin-offset Y] | srdgd gallery threshold NAME off"
	var o *match.Offset
	switch {
	case len(c.pos) == 2 && c.pos[1] == "off" && !c.offsetGiven:
	case len(c.pos) == 1 && c.offsetGiven:
		o = &match.Offset{Threshold: c.offset, Margin: c.marginOffset}
		if err := o.Check(); err != nil {
			fmt.Fprintf(stderr, "srdgd gallery threshold: %v\n%s\n", err, usage)
			return exitUsage
		}
	default:
		fmt.Fprintln(stderr, "srdgd gallery threshold: give --offset and/or --margin-offset, or off\n"+usage)
		return exitUsage
	}
	detail, err := env.SetOffset(ctx, c.pos[0], o)
	if err != nil {
		return galleryFail(stderr, err)
	}
	fmt.Fprintf(stdout, "threshold override of %s: %s\n", c.pos[0], detail)
	return exitOK
}
