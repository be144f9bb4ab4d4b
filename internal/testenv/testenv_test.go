package testenv

import "testing"

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "true": true, "1": true, "false": false, "yes": false} {
		t.Setenv("CI", v)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI %v, want %v", v, got, want)
		}
	}
}

// Unavailable skips outside CI and fails in it.
func TestUnavailable(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		ft := &recorder{}
		func() {
			defer func() { _ = recover() }() // Skipf and Fatalf end the goroutine (runtime.Goexit) in a real T
			Unavailable(ft, "bin/%s missing", "x")
		}()
		if ci == "" && (!ft.skipped || ft.failed) || ci == "true" && (!ft.failed || ft.skipped) {
			t.Errorf("CI=%q: skipped %v failed %v", ci, ft.skipped, ft.failed)
		}
	}
}

// recorder is a testing.TB that records a skip or a failure.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
