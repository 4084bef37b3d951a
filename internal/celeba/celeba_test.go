package celeba

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cases feeds both TestRead and FuzzRead's seeds.
var cases = []struct {
	name, csv, want, err string
}{
	{"sorted, attributes 0/1", "image,split,celeba_identity,Male,No_Beard\n" +
		"b.jpg,test,7,1,-1\n" + "a.jpg,train,9,-1,0\n",
		"[{a.jpg train 9 map[Male:0 No_Beard:0]} {b.jpg test 7 map[Male:1 No_Beard:0]}]", ""},
	{"a column with other values is no attribute", "image,split,repo_class,celeba_identity,Male\n" +
		"a.jpg,train,celeb_1,3,1\n",
		"[{a.jpg train 3 map[Male:1]}]", ""},
	{"missing columns", "image,Male\na.jpg,1\n", "", `no column "split", "celeba_identity"`},
	{"no rows", "image,split,celeba_identity\n", "", "no rows"},
	{"empty identity", "image,split,celeba_identity\na.jpg,train,\n", "", "empty image or identity"},
	{"ragged", "image,split,celeba_identity\na.jpg,train\n", "", "wrong number of fields"},
}

func write(t testing.TB, csv string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LabelsFile), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRead(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := Read(write(t, c.csv))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(rows); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	if _, err := Read(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no labels.csv: %v", err)
	}
	r := Row{Image: "a.jpg", Attrs: map[string]int{"Male": 1}}
	if v, err := r.Attr("Male"); v != 1 || err != nil {
		t.Errorf("Attr(Male) = %d, %v", v, err)
	}
	if _, err := r.Attr("Eyeglasses"); err == nil || !strings.Contains(err.Error(), "a.jpg: no attribute Eyeglasses") {
		t.Errorf("Attr(Eyeglasses): %v", err)
	}
}

// TestSharedSubset reads the real labels.csv when it is here: 6,000 images
// of 200 identities, 4,800 train, 600 validation, 600 test.
func TestSharedSubset(t *testing.T) {
	dir, err := Find()
	if err != nil {
		t.Skipf("SKIPPING: %v", err)
	}
	rows, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	splits, ids := map[string]int{}, map[string]bool{}
	for _, r := range rows {
		splits[r.Split]++
		ids[r.Identity] = true
		if len(r.Attrs) != 40 {
			t.Fatalf("%s: %d attributes, want CelebA's 40", r.Image, len(r.Attrs))
		}
	}
	if len(rows) != 6000 || len(ids) != 200 || splits["train"] != 4800 || splits["validation"] != 600 || splits["test"] != 600 {
		t.Errorf("%d rows, %d identities, splits %v", len(rows), len(ids), splits)
	}
	if _, err := os.Stat(ImagePath(dir, rows[0].Image)); err != nil {
		t.Error(err)
	}
}

func FuzzRead(f *testing.F) {
	for _, c := range cases {
		f.Add(c.csv)
	}
	f.Fuzz(func(t *testing.T, csv string) {
		rows, err := Read(write(t, csv))
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Image == "" || r.Identity == "" {
				t.Fatalf("row %+v accepted", r)
			}
			for k, v := range r.Attrs {
				if v != 0 && v != 1 {
					t.Fatalf("attribute %s = %d", k, v)
				}
			}
		}
	})
}
