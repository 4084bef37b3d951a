//go:build ignore

// blank writes the hostile-but-allowed enrolment photos of bench/enrol: fully
// transparent RGBA PNGs, SIDE x SIDE pixels, that compress to a few KB.
//
//	go run bench/enrol/blank.go OUTDIR SIDE...
package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go run bench/enrol/blank.go OUTDIR SIDE...")
		os.Exit(2)
	}
	for _, a := range os.Args[2:] {
		side, err := strconv.Atoi(a)
		if err != nil || side < 1 {
			fmt.Fprintf(os.Stderr, "side %q: want a positive number\n", a)
			os.Exit(2)
		}
		p := filepath.Join(os.Args[1], fmt.Sprintf("blank%d.png", side))
		f, err := os.Create(p)
		if err == nil {
			err = png.Encode(f, image.NewNRGBA(image.Rect(0, 0, side, side)))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
