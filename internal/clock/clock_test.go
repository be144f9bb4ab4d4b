package clock

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFakeTimersFireInOrderOnAdvance(t *testing.T) {
	f := NewFake(t0)
	var got []string
	f.AfterFunc(3*time.Second, func() { got = append(got, "c") })
	f.AfterFunc(time.Second, func() {
		got = append(got, "a")
		if f.Now() != t0.Add(time.Second) {
			t.Errorf("Now in callback = %v", f.Now())
		}
		// A timer armed by a callback within the span fires too.
		f.AfterFunc(time.Second, func() { got = append(got, "b") })
	})
	tm := f.NewTimer(2 * time.Second)
	f.Advance(999 * time.Millisecond)
	if len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	f.Advance(5 * time.Second)
	if want := "abc"; join(got) != want {
		t.Fatalf("order = %v, want %s", got, want)
	}
	select {
	case v := <-tm.C():
		if !v.Equal(t0.Add(2 * time.Second)) {
			t.Fatalf("timer value %v", v)
		}
	default:
		t.Fatal("NewTimer did not fire")
	}
	if f.Now() != t0.Add(5999*time.Millisecond) {
		t.Fatalf("Now = %v", f.Now())
	}
	if f.Since(t0) != 5999*time.Millisecond {
		t.Fatalf("Since = %v", f.Since(t0))
	}
}

func join(s []string) string {
	r := ""
	for _, x := range s {
		r += x
	}
	return r
}

func TestFakeStopReset(t *testing.T) {
	f := NewFake(t0)
	fired := 0
	tm := f.AfterFunc(time.Second, func() { fired++ })
	if !tm.Stop() {
		t.Fatal("Stop of an active timer returned false")
	}
	if tm.Stop() {
		t.Fatal("second Stop returned true")
	}
	f.Advance(2 * time.Second)
	if fired != 0 {
		t.Fatal("stopped timer fired")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer returned true")
	}
	f.Advance(time.Second)
	if fired != 1 {
		t.Fatalf("fired %d, want 1", fired)
	}

	// Reset drains a value not yet received.
	nt := f.NewTimer(time.Second)
	f.Advance(time.Second)
	nt.Reset(time.Second)
	select {
	case <-nt.C():
		t.Fatal("stale value after Reset")
	default:
	}
	if f.Pending() != 1 {
		t.Fatalf("Pending = %d", f.Pending())
	}
}

func TestFakeBlockUntil(t *testing.T) {
	f := NewFake(t0)
	done := make(chan time.Time)
	go func() {
		tm := f.NewTimer(time.Minute)
		done <- <-tm.C()
	}()
	f.BlockUntil(1)
	f.Advance(time.Minute)
	if v := <-done; !v.Equal(t0.Add(time.Minute)) {
		t.Fatalf("got %v", v)
	}
}

func TestReal(t *testing.T) {
	c := Real()
	start := c.Now()
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	if c.Since(start) < time.Millisecond {
		t.Fatal("real timer fired early")
	}
	ch := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(ch) })
	<-ch
}
