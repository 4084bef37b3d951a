package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/srdgd/srdgd/config"
	"github.com/srdgd/srdgd/face"
	"github.com/srdgd/srdgd/internal/app"
	"github.com/srdgd/srdgd/match"
	"github.com/srdgd/srdgd/publish/history"
)

// galleryFeedback is `srdgd gallery feedback HIT VERDICT [NAME]`: the
// operator's verdict on a hit in the history, stored as the API stores it
// (a template per person, audited as hit.feedback).
func galleryFeedback(ctx context.Context, cfg *config.Config, env *app.Gallery, args []string, stdout, stderr io.Writer) int {
	const usage = "usage: srdgd gallery feedback HIT_ID confirm|reject|not_enrolled [NAME]\n" +
		"  confirm NAME: the hit is NAME; reject [NAME]: it is not NAME (default: the person it named, else its top candidate);\n" +
		"  not_enrolled: it is nobody enrolled (rejects its named person and top candidate)"
	if len(args) < 2 || len(args) > 3 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	id, verdict, person := args[0], args[1], ""
	if len(args) == 3 {
		person = args[2]
	}
	o, err := app.HistoryOptions(cfg, nil)
	if err != nil {
		return galleryFail(stderr, err)
	}
	h, err := history.Open(ctx, history.Options{Path: o.Path, Key: o.Key})
	if err != nil {
		return galleryFail(stderr, err)
	}
	defer h.Close()
	hit, err := h.Get(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		fmt.Fprintf(stderr, "srdgd gallery feedback: no hit %q in the history (%s)\n", id, o.Path)
		return exitFailure
	}
	if err != nil {
		return galleryFail(stderr, err)
	}
	targets, err := face.FeedbackTargets(hit.Match, verdict, person)
	if err != nil {
		fmt.Fprintf(stderr, "srdgd gallery feedback: %v\n%s\n", err, usage)
		return exitUsage
	}
	if len(hit.SRJPEG) == 0 {
		fmt.Fprintf(stderr, "srdgd gallery feedback: hit %s has no SR face kept: nothing to learn from\n", id)
		return exitFailure
	}
	api := app.NewGalleryAPI(env.Gallery)
	for _, p := range targets {
		tid, err := api.Feedback(ctx, p, verdict, hit.SRJPEG, hit.SR.Scale, hit.ID)
		if err != nil {
			auditCLI(ctx, cfg, stderr, "hit.feedback.failed", hit.ID, fmt.Sprintf("%s %s: %v", verdict, p, err))
			return galleryFail(stderr, err)
		}
		fmt.Fprintf(stdout, "%s %s: template %d (hit %s)\n", verdict, p, tid, hit.ID)
		auditCLI(ctx, cfg, stderr, "hit.feedback", hit.ID, fmt.Sprintf("%s %s (template %d)", verdict, p, tid))
	}
	return exitOK
}

// galleryWatchlist is `srdgd gallery watchlist NAME on|off`.
func galleryWatchlist(ctx context.Context, cfg *config.Config, env *app.Gallery, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
		fmt.Fprintln(stderr, "usage: srdgd gallery watchlist NAME on|off")
		return exitUsage
	}
	on := args[1] == "on"
	if err := env.Gallery.SetWatchlist(ctx, args[0], on); err != nil {
		return galleryFail(stderr, err)
	}
	fmt.Fprintf(stdout, "watchlist %s: %s\n", args[1], args[0])
	auditCLI(ctx, cfg, stderr, "gallery.watchlist", args[0], fmt.Sprintf("watchlist %v", on))
	return exitOK
}

// galleryThreshold sets or clears a person's threshold override (audited
// "gallery.override", as from the API).
func galleryThreshold(ctx context.Context, cfg *config.Config, env *app.Gallery, c *galleryArgs, stdout, stderr io.Writer) int {
	const usage = "usage: srdgd gallery threshold NAME --offset X [--margin-offset Y] | srdgd gallery threshold NAME off"
	name := c.pos[0]
	given := !math.IsNaN(c.offset) || !math.IsNaN(c.marginOffset)
	var o *match.Offset
	switch {
	case len(c.pos) == 2 && c.pos[1] == "off" && !given:
	case len(c.pos) == 1 && given:
		o = &match.Offset{}
		if !math.IsNaN(c.offset) {
			o.Threshold = c.offset
		}
		if !math.IsNaN(c.marginOffset) {
			o.Margin = c.marginOffset
		}
		if err := o.Check(); err != nil {
			fmt.Fprintf(stderr, "srdgd gallery threshold: %v\n%s\n", err, usage)
			return exitUsage
		}
	default:
		fmt.Fprintln(stderr, "srdgd gallery threshold: give --offset and/or --margin-offset, or off\n"+usage)
		return exitUsage
	}
	if err := env.Gallery.SetOffset(ctx, name, o); err != nil {
		return galleryFail(stderr, err)
	}
	detail := "off"
	if o != nil {
		detail = fmt.Sprintf("threshold_offset %+.3f margin_offset %+.3f", o.Threshold, o.Margin)
	}
	fmt.Fprintf(stdout, "threshold override of %s: %s\n", name, detail)
	auditCLI(ctx, cfg, stderr, "gallery.override", name, detail)
	return exitOK
}
