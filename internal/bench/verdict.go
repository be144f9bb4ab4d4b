package main

import "fmt"

// optNum prints a measured value with three decimals, "-" when there is
// none.
func optNum(x float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.3f", x)
}

// atMost is a table's verdict on a value whose target is a limit: PASS,
// MISS, or "-" when the value was not measured.
func atMost(x, limit float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case x <= limit:
		return "PASS"
	default:
		return "MISS"
	}
}

// atLeast is a table's verdict on a value whose target is a floor: PASS,
// MISS, or "-" when the value was not measured.
func atLeast(x, floor float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case x >= floor:
		return "PASS"
	default:
		return "MISS"
	}
}
