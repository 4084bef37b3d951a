package npy

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
	}{
		{"vector", []int{5}},
		{"matrix", []int{2, 3}},
		{"nchw", []int{1, 3, 4, 4}},
		{"empty", []int{0, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 1
			for _, d := range c.shape {
				n *= d
			}
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(i)*0.5 - 3
			}
			var buf bytes.Buffer
			if err := Write(&buf, c.shape, data); err != nil {
				t.Fatal(err)
			}
			if (buf.Len()-len(data)*4)%64 != 0 {
				t.Errorf("data not 64-byte aligned: header %d bytes", buf.Len()-len(data)*4)
			}
			a, err := Read(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != "<f4" || len(a.Shape) != len(c.shape) {
				t.Fatalf("got dtype %s shape %v", a.DType, a.Shape)
			}
			for i := range data {
				if a.F32[i] != data[i] {
					t.Fatalf("element %d: %v != %v", i, a.F32[i], data[i])
				}
			}
		})
	}
}

// The shared reference vectors were written by NumPy itself.
func TestReadNumPyFiles(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "reference", "ncsnpp")
	a, err := ReadFile(filepath.Join(dir, "b3_sigma.npy"))
	if err != nil {
		t.Skipf("shared reference vectors not available: %v", err)
	}
	if a.DType != "<f4" || len(a.F32) != 3 || a.F32[1] != 1 || a.F32[2] != 348 {
		t.Errorf("b3_sigma = %s %v %v", a.DType, a.Shape, a.F32)
	}
	b, err := ReadFile(filepath.Join(dir, "b3_score.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if b.DType != "<f8" || len(b.Shape) != 4 || b.Len() != 3*3*128*128 {
		t.Errorf("b3_score = %s %v", b.DType, b.Shape)
	}
}

func TestReadErrors(t *testing.T) {
	cases := map[string][]byte{
		"empty":     {},
		"bad magic": []byte("\x93NUMPZ\x01\x00"),
		"truncated": append(append([]byte{}, magic...), 1, 0, 10, 0, '{'),
		"version 9": append(append([]byte{}, magic...), 9, 0),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Read(bytes.NewReader(b)); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	_ = Write(&buf, []int{2, 2}, []float32{1, 2, 3, 4})
	f.Add(buf.Bytes())
	f.Add([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Read(bytes.NewReader(b))
	})
}
