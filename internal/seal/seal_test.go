package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	s1, err := New(k1)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := New(k2)
	plain := []byte("an embedding, say")
	blob, err := s1.Seal(plain, "row/1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, plain) {
		t.Fatal("sealed blob holds the plaintext")
	}
	cases := []struct {
		name string
		s    *Sealer
		blob []byte
		ad   string
		want error
	}{
		{"right key and place", s1, blob, "row/1", nil},
		{"wrong key", s2, blob, "row/1", ErrDecrypt},
		{"other row", s1, blob, "row/2", ErrDecrypt},
		{"tampered", s1, append(append([]byte{}, blob[:len(blob)-1]...), blob[len(blob)-1]^1), "row/1", ErrDecrypt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.s.Open(c.blob, c.ad)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if err == nil && !bytes.Equal(got, plain) {
				t.Fatalf("opened %q", got)
			}
		})
	}
	if _, err := s1.Open([]byte{9, 9}, "row/1"); err == nil || errors.Is(err, ErrDecrypt) {
		t.Fatalf("short blob: %v, want a format error", err)
	}
	if _, err := New(k1[:5]); err == nil {
		t.Fatal("5-byte key accepted")
	}
	var none *Sealer
	if p, _ := none.Seal(plain, "x"); !bytes.Equal(p, plain) {
		t.Fatal("nil sealer must store plaintext")
	}
}
