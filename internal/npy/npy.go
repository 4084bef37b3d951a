// Package npy reads and writes NumPy .npy files (format versions 1-3, C order,
// little-endian float32, float64, int64, int32, uint8). The model toolchain and
// the reference test vectors exchange tensors in this format.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var magic = []byte("\x93NUMPY")

// Array is a dense C-order array. Exactly one of the data slices is set,
// according to DType.
type Array struct {
	DType string // "<f4", "<f8", "<i8", "<i4", "|u1"
	Shape []int
	F32   []float32
	F64   []float64
	I64   []int64
	I32   []int32
	U8    []uint8
}

// Len is the number of elements the shape describes.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Float32 returns the data converted to float32 (a copy unless DType is <f4).
func (a *Array) Float32() []float32 {
	switch {
	case a.F32 != nil:
		return a.F32
	case a.F64 != nil:
		out := make([]float32, len(a.F64))
		for i, v := range a.F64 {
			out[i] = float32(v)
		}
		return out
	case a.I64 != nil:
		out := make([]float32, len(a.I64))
		for i, v := range a.I64 {
			out[i] = float32(v)
		}
		return out
	case a.I32 != nil:
		out := make([]float32, len(a.I32))
		for i, v := range a.I32 {
			out[i] = float32(v)
		}
		return out
	case a.U8 != nil:
		out := make([]float32, len(a.U8))
		for i, v := range a.U8 {
			out[i] = float32(v)
		}
		return out
	}
	return nil
}

// Float64 returns the data converted to float64.
func (a *Array) Float64() []float64 {
	if a.F64 != nil {
		return a.F64
	}
	f := a.Float32()
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	if a.I64 != nil { // avoid the float32 round trip for integers
		for i, v := range a.I64 {
			out[i] = float64(v)
		}
	}
	return out
}

var (
	descrRe   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	fortranRe = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRe   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// ReadFile reads an .npy file.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return a, nil
}

// maxElements bounds what a header may claim, so a corrupt file cannot ask for
// an absurd allocation.
const maxElements = 1 << 31

// Read decodes one array from r.
func Read(r io.Reader) (*Array, error) {
	pre := make([]byte, 8)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("reading preamble: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, errors.New("not an npy file (bad magic)")
	}
	var hlen int
	switch pre[6] {
	case 1:
		b := make([]byte, 2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b))
	case 2, 3:
		b := make([]byte, 4)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(b))
	default:
		return nil, fmt.Errorf("unsupported npy version %d", pre[6])
	}
	if hlen > 1<<16 {
		return nil, fmt.Errorf("header length %d too large", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	h := string(hb)
	m := descrRe.FindStringSubmatch(h)
	if m == nil {
		return nil, fmt.Errorf("header has no descr: %q", h)
	}
	a := &Array{DType: m[1]}
	if fm := fortranRe.FindStringSubmatch(h); fm == nil || fm[1] != "False" {
		return nil, errors.New("only C-order arrays are supported")
	}
	sm := shapeRe.FindStringSubmatch(h)
	if sm == nil {
		return nil, fmt.Errorf("header has no shape: %q", h)
	}
	n := 1
	for _, p := range strings.Split(sm[1], ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		d, err := strconv.Atoi(p)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad shape %q", sm[1])
		}
		a.Shape = append(a.Shape, d)
		n *= d
		if n > maxElements {
			return nil, fmt.Errorf("shape %q too large", sm[1])
		}
	}
	var err error
	switch a.DType {
	case "<f4":
		a.F32 = make([]float32, n)
		err = binary.Read(r, binary.LittleEndian, a.F32)
	case "<f8":
		a.F64 = make([]float64, n)
		err = binary.Read(r, binary.LittleEndian, a.F64)
	case "<i8":
		a.I64 = make([]int64, n)
		err = binary.Read(r, binary.LittleEndian, a.I64)
	case "<i4":
		a.I32 = make([]int32, n)
		err = binary.Read(r, binary.LittleEndian, a.I32)
	case "|u1", "<u1":
		a.U8 = make([]uint8, n)
		_, err = io.ReadFull(r, a.U8)
	default:
		return nil, fmt.Errorf("unsupported dtype %q", a.DType)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %d elements of %s: %w", n, a.DType, err)
	}
	return a, nil
}

// WriteFile writes a float32 array as .npy (version 1).
func WriteFile(path string, shape []int, data []float32) error {
	var buf bytes.Buffer
	if err := Write(&buf, shape, data); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Write encodes a float32 array as .npy (version 1).
func Write(w io.Writer, shape []int, data []float32) error {
	n := 1
	dims := make([]string, len(shape))
	for i, d := range shape {
		n *= d
		dims[i] = strconv.Itoa(d)
	}
	if n != len(data) {
		return fmt.Errorf("shape %v needs %d elements, have %d", shape, n, len(data))
	}
	s := strings.Join(dims, ", ")
	if len(shape) == 1 {
		s += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", s)
	// pad so that the data starts at a multiple of 64 bytes, header ends in \n
	total := len(magic) + 2 + 2 + len(h) + 1
	h += strings.Repeat(" ", (64-total%64)%64) + "\n"
	if _, err := w.Write(append(magic, 1, 0)); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint16(len(h))); err != nil {
		return err
	}
	if _, err := io.WriteString(w, h); err != nil {
		return err
	}
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	_, err := w.Write(b)
	return err
}
