package telemetry

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

func tapEvent(route string, status int) TapEvent {
	return TapEvent{Time: time.Unix(1700000000, 0), Route: route, Method: "GET", Path: "/orders/1",
		Status: status, Latency: 3 * time.Millisecond, Upstream: "orders", Endpoint: "10.0.0.1:8080"}
}

// drain returns the events waiting in ch without blocking.
func drain(ch <-chan TapEvent) []TapEvent {
	var out []TapEvent
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// waitDone fails the test if done is not closed in time: a failsafe for a
// Publish that blocks, not a measurement.
func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return: Publish blocked", what)
	}
}

func TestTapWithoutSubscribers(t *testing.T) {
	tap := NewTap()
	if tap.Active() || tap.Subscribers() != 0 {
		t.Fatal("a new tap is active")
	}
	tap.Publish(tapEvent("orders", 200)) // no one to deliver to

	var nilTap *Tap
	if nilTap.Active() || nilTap.Subscribers() != 0 {
		t.Fatal("nil tap active")
	}
}

func TestTapDeliversMatchingEvents(t *testing.T) {
	tap := NewTap()
	all, cancelAll, _ := tap.Subscribe(TapFilter{})
	defer cancelAll()
	errs, cancelErrs, _ := tap.Subscribe(TapFilter{Route: "orders", StatusMin: 500})
	defer cancelErrs()
	client, cancelClient, _ := tap.Subscribe(TapFilter{StatusMin: 400, StatusMax: 499, Consumer: "acme"})
	defer cancelClient()
	if !tap.Active() || tap.Subscribers() != 3 {
		t.Fatalf("Active %v, Subscribers %d", tap.Active(), tap.Subscribers())
	}

	in := []TapEvent{
		tapEvent("orders", 200),
		tapEvent("orders", 503),
		tapEvent("users", 502),
		tapEvent("orders", 429),
		tapEvent("orders", 599),
	}
	in[3].Consumer = "acme"
	second := tapEvent("users", 404)
	second.Consumer = "other"
	in = append(in, second)
	for _, ev := range in {
		ev.Dropped = 99 // ignored by Publish
		tap.Publish(ev)
	}

	check := func(name string, ch <-chan TapEvent, want []TapEvent) {
		t.Helper()
		got := drain(ch)
		if len(got) != len(want) {
			t.Fatalf("%s: got %d events, want %d: %+v", name, len(got), len(want), got)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s[%d] = %+v, want %+v", name, i, got[i], want[i])
			}
		}
	}
	check("all", all, in)
	check("errors", errs, []TapEvent{in[1], in[4]})
	check("client", client, []TapEvent{in[3]})
}

func TestTapSamples(t *testing.T) {
	for _, sample := range []float64{0.1, 0.01, 0.25, 0.5, 1, 0} {
		t.Run(fmt.Sprint(sample), func(t *testing.T) {
			tap := NewTap()
			ch, cancel, _ := tap.Subscribe(TapFilter{Route: "orders", Sample: sample})
			defer cancel()
			const n = 10000
			got := 0
			for i := 0; i < n; i++ {
				tap.Publish(tapEvent("orders", 200))
				tap.Publish(tapEvent("users", 200)) // filtered out before sampling
				if i%100 == 99 {                    // never more than the buffer between reads
					for _, ev := range drain(ch) {
						if ev.Dropped != 0 {
							t.Fatalf("dropped %d", ev.Dropped)
						}
						got++
					}
				}
			}
			rate := sample
			if rate == 0 {
				rate = 1
			}
			want := rate * n
			if math.Abs(float64(got)-want) > want/10 {
				t.Fatalf("sample %v: %d of %d events delivered, want %v ± 10%%", sample, got, n, want)
			}
		})
	}
}

func TestTapSlowSubscriberLosesEventsWithoutBlocking(t *testing.T) {
	tap := NewTap()
	slow, cancelSlow, _ := tap.Subscribe(TapFilter{}) // never read until the end
	defer cancelSlow()
	fast, cancelFast, _ := tap.Subscribe(TapFilter{})
	defer cancelFast()

	const n = 10000
	fastGot := make(chan int)
	go func() {
		c := 0
		for range fast {
			c++
		}
		fastGot <- c
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			tap.Publish(tapEvent("orders", 200))
		}
	}()
	waitDone(t, done, "Publish to a subscriber that never reads")

	got := drain(slow)
	if len(got) != TapBuffer {
		t.Fatalf("slow subscriber holds %d events, want its buffer (%d)", len(got), TapBuffer)
	}
	for _, ev := range got {
		if ev.Dropped != 0 {
			t.Fatalf("event before any loss says Dropped %d", ev.Dropped)
		}
	}
	tap.Publish(tapEvent("orders", 201))
	ev := <-slow
	if ev.Status != 201 || ev.Dropped != n-TapBuffer {
		t.Fatalf("next event: status %d, Dropped %d; want 201, %d", ev.Status, ev.Dropped, n-TapBuffer)
	}
	tap.Publish(tapEvent("orders", 202))
	if ev := <-slow; ev.Dropped != 0 {
		t.Fatalf("Dropped %d after a delivered event, want 0", ev.Dropped)
	}

	// The slow reader cost the fast one nothing it could not keep up with:
	// it received every event or was told how many it missed.
	cancelFast()
	if c := <-fastGot; c == 0 {
		t.Fatal("fast subscriber received nothing")
	}
}

func TestTapCancelClosesTheChannel(t *testing.T) {
	tap := NewTap()
	a, cancelA, _ := tap.Subscribe(TapFilter{})
	b, cancelB, _ := tap.Subscribe(TapFilter{})
	tap.Publish(tapEvent("orders", 200))

	cancelA()
	cancelA() // idempotent
	if n := tap.Subscribers(); n != 1 {
		t.Fatalf("Subscribers = %d after one cancel", n)
	}
	// The buffered event is still there, then the channel is closed.
	if ev, ok := <-a; !ok || ev.Status != 200 {
		t.Fatalf("buffered event lost: %+v %v", ev, ok)
	}
	if _, ok := <-a; ok {
		t.Fatal("channel open after cancel")
	}
	tap.Publish(tapEvent("orders", 201)) // reaches only b
	if got := drain(b); len(got) != 2 {
		t.Fatalf("b got %d events, want 2", len(got))
	}
	cancelB()
	if tap.Active() {
		t.Fatal("tap active without subscribers")
	}
	tap.Publish(tapEvent("orders", 202)) // no send on a closed channel
	if _, ok := <-b; ok {
		t.Fatal("b open after cancel")
	}
}

func TestTapFilterValidate(t *testing.T) {
	for _, tc := range []struct {
		f  TapFilter
		ok bool
	}{
		{TapFilter{}, true},
		{TapFilter{Sample: 1}, true},
		{TapFilter{Sample: 0.001, StatusMin: 500, StatusMax: 599}, true},
		{TapFilter{StatusMin: 500}, true},
		{TapFilter{Sample: -0.5}, false},
		{TapFilter{Sample: 1.5}, false},
		{TapFilter{Sample: math.NaN()}, false},
		{TapFilter{StatusMin: 500, StatusMax: 400}, false},
		{TapFilter{StatusMin: -1}, false},
	} {
		if err := tc.f.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.f, err, tc.ok)
		}
	}
	// Subscribe takes an out-of-range sample as 1 rather than failing.
	tap := NewTap()
	ch, cancel, _ := tap.Subscribe(TapFilter{Sample: 7})
	defer cancel()
	for i := 0; i < 10; i++ {
		tap.Publish(tapEvent("orders", 200))
	}
	if n := len(drain(ch)); n != 10 {
		t.Fatalf("sample 7 delivered %d of 10", n)
	}
}

// Publishers, subscribers that read, subscribers that do not, and cancels,
// all at once: run with -race. Every subscriber accounts for every event it
// matched: received plus reported dropped plus still pending drops.
func TestTapConcurrent(t *testing.T) {
	tap := NewTap()
	const publishers, perPublisher = 8, 5000
	var wg sync.WaitGroup
	stop := make(chan struct{})

	// Subscribers that come and go while events flow.
	var churn sync.WaitGroup
	for i := 0; i < 4; i++ {
		churn.Add(1)
		go func(i int) {
			defer churn.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ch, cancel, _ := tap.Subscribe(TapFilter{StatusMin: 200 + i, Sample: 0.5})
				for j := 0; j < 10; j++ {
					select {
					case <-ch:
					default:
					}
				}
				cancel()
				for range ch { // drains what is left, ends when closed
				}
			}
		}(i)
	}

	// A steady reader that must see every event, received or counted lost.
	steady, cancelSteady, _ := tap.Subscribe(TapFilter{})
	total := make(chan uint64)
	sawMarker := make(chan struct{}, 1)
	go func() {
		var n uint64
		for ev := range steady {
			n += 1 + ev.Dropped
			if ev.Route == "marker" {
				select {
				case sawMarker <- struct{}{}:
				default:
				}
			}
		}
		total <- n
	}()

	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perPublisher; i++ {
				tap.Publish(tapEvent("orders", 200+i%300))
			}
		}()
	}
	wg.Wait()
	close(stop)
	churn.Wait()

	// Push out a final event so the steady reader learns of trailing drops;
	// it may itself be dropped, so repeat until one is delivered.
	markers := uint64(0)
	for delivered := false; !delivered; {
		markers++
		tap.Publish(tapEvent("marker", 200))
		select {
		case <-sawMarker:
			delivered = true
		default:
			runtime.Gosched()
		}
	}
	cancelSteady()
	n := <-total
	// Every event but possibly some markers was received or counted; markers
	// dropped after the last delivered one are not reported.
	if want := uint64(publishers * perPublisher); n < want+1 || n > want+markers {
		t.Fatalf("steady subscriber accounted for %d events, want %d..%d", n, want+1, want+markers)
	}
}

func BenchmarkTapPublish(b *testing.B) {
	ev := tapEvent("orders", 200)
	b.Run("no_subscriber", func(b *testing.B) {
		tap := NewTap()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N { // not b.Loop: it keeps Publish from inlining, as it does in the entry
			tap.Publish(ev)
		}
	})
	// What the listener entry does per request: no event is built while
	// nobody listens.
	b.Run("no_subscriber_entry_guard", func(b *testing.B) {
		tap := NewTap()
		start := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if tap.Active() {
				tap.Publish(TapEvent{Time: start, Route: "orders", Method: "GET", Path: "/orders/1",
					Status: 200 + i%2, Latency: time.Duration(i), Upstream: "orders"})
			}
		}
	})
	b.Run("no_subscriber_parallel", func(b *testing.B) {
		tap := NewTap()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tap.Publish(ev)
			}
		})
	})
	b.Run("one_subscriber_filtered_out", func(b *testing.B) {
		tap := NewTap()
		_, cancel, _ := tap.Subscribe(TapFilter{Route: "users"})
		defer cancel()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N { // not b.Loop: it keeps Publish from inlining, as it does in the entry
			tap.Publish(ev)
		}
	})
	b.Run("one_subscriber_reading", func(b *testing.B) {
		tap := NewTap()
		ch, cancel, _ := tap.Subscribe(TapFilter{})
		drained := drainInBackground(ch)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N { // not b.Loop: it keeps Publish from inlining, as it does in the entry
			tap.Publish(ev)
		}
		b.StopTimer()
		cancel()
		drained()
	})
	b.Run("one_subscriber_full", func(b *testing.B) {
		tap := NewTap()
		_, cancel, _ := tap.Subscribe(TapFilter{})
		defer cancel()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N { // not b.Loop: it keeps Publish from inlining, as it does in the entry
			tap.Publish(ev)
		}
	})
	b.Run("one_subscriber_sample_0.01", func(b *testing.B) {
		tap := NewTap()
		ch, cancel, _ := tap.Subscribe(TapFilter{Sample: 0.01})
		drained := drainInBackground(ch)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N { // not b.Loop: it keeps Publish from inlining, as it does in the entry
			tap.Publish(ev)
		}
		b.StopTimer()
		cancel()
		drained()
	})
	b.Run("one_subscriber_reading_parallel", func(b *testing.B) {
		tap := NewTap()
		ch, cancel, _ := tap.Subscribe(TapFilter{})
		drained := drainInBackground(ch)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tap.Publish(ev)
			}
		})
		b.StopTimer()
		cancel()
		drained()
	})
}

// drainInBackground reads a subscription until it is closed (by its cancel); the
// returned func waits for that.
func drainInBackground(ch <-chan TapEvent) (wait func()) {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return func() { <-done }
}

// At most MaxTapSubscribers taps at once; closing one makes room.
func TestTapSubscribersAreBounded(t *testing.T) {
	tap := NewTap()
	var cancels []func()
	for range MaxTapSubscribers {
		_, cancel, err := tap.Subscribe(TapFilter{})
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, cancel)
	}
	if _, _, err := tap.Subscribe(TapFilter{}); err != ErrTapFull {
		t.Fatalf("tap %d: %v", MaxTapSubscribers+1, err)
	}
	cancels[0]()
	if _, cancel, err := tap.Subscribe(TapFilter{}); err != nil {
		t.Fatalf("after one closed: %v", err)
	} else {
		cancel()
	}
	for _, c := range cancels[1:] {
		c()
	}
}
