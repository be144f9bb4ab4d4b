package admin

import (
	"reflect"
	"testing"
)

func TestShareOut(t *testing.T) {
	for _, tc := range []struct {
		cur    map[string]float64
		subset string
		weight int
		want   map[string]int
	}{
		// From "all subsets" (50/50) to 10% on v2: v1 gets the rest.
		{map[string]float64{"v1": 50, "v2": 50}, "v2", 10, map[string]int{"v1": 90, "v2": 10}},
		// Others keep their proportions: 60/30/10 → v3 at 40: v1 40, v2 20.
		{map[string]float64{"v1": 60, "v2": 30, "v3": 10}, "v3", 40, map[string]int{"v1": 40, "v2": 20, "v3": 40}},
		// No history: the rest is shared equally, leftovers by remainder.
		{map[string]float64{"a": 0, "b": 0, "c": 0}, "a", 0, map[string]int{"a": 0, "b": 50, "c": 50}},
		{map[string]float64{"a": 0, "b": 0, "c": 0, "d": 0}, "a", 1, map[string]int{"a": 1, "b": 33, "c": 33, "d": 33}},
		// The only subset gets everything whatever the weight.
		{map[string]float64{"v2": 0}, "v2", 10, map[string]int{"v2": 100}},
	} {
		got := shareOut(tc.cur, tc.subset, tc.weight)
		sum := 0
		for _, w := range got {
			sum += w
		}
		if sum != 100 || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shareOut(%v, %s, %d) = %v (sum %d), want %v", tc.cur, tc.subset, tc.weight, got, sum, tc.want)
		}
	}
}

func TestClosestNames(t *testing.T) {
	names := []string{"orders", "orders-v2", "payments", "catalog"}
	if got := closest("ordrs", names, 3); len(got) == 0 || got[0] != "orders" {
		t.Fatalf("closest(ordrs) = %v", got)
	}
	if got := closest("zzzzzz", names, 3); len(got) != 0 {
		t.Fatalf("closest(zzzzzz) = %v", got)
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Fatalf("editDistance = %d", d)
	}
}
