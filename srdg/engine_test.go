package srdg

import (
	"context"
	"reflect"
	"testing"
)

// A guidance model that cannot mask single attributes must not be fed -1:
// faces with partial labels go unguided, complete ones stay guided.
func TestPartialLabelsWithoutAbstainSupport(t *testing.T) {
	sc, g := openFixtures(t)
	e, err := NewEngine(Options{Score: sc, Guidance: g, HR: fixHW, LR: 1, Attributes: g.Info.Attributes, AbstainLabel: false})
	if err != nil {
		t.Fatal(err)
	}
	lr := []float32{0.5, 0.5, 0.5}
	res, err := e.SuperResolve(context.Background(), []Input{{LR: lr, Labels: []int{1, -1, 0}}, {LR: lr, Labels: []int{1, 1, 0}}, {LR: lr}},
		Params{Sampler: "ode"}, NewSeededNoise(3))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Guided || !res[1].Guided || res[2].Guided {
		t.Errorf("guided = %v %v %v, want false true false", res[0].Guided, res[1].Guided, res[2].Guided)
	}
	if !reflect.DeepEqual(res[0].Labels, []int{1, -1, 0}) {
		t.Errorf("labels used %v", res[0].Labels)
	}
}
