package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/gossip"
)

// The detection and lossy-link measurements on a real (small) run: a
// silent node is found dead by every other, a short spell of lossy links
// kills nobody, and both reach the report.
func TestDetectSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real gossip clusters")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	took, err := measureDetection(ctx, 1, 1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults detect in 1.8–2.5 s (make bench); 1 s probes with a
	// suspicion multiplier of 4 took 5.7–7 s. The bound leaves room for
	// a loaded machine without letting those timings back.
	if len(took) != 1 || took[0] > 5*time.Second {
		t.Fatalf("detection: %v", took)
	}
	r, err := startLossy(ctx, lossyLink, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	lossy, dead, delayed := r.stopLossy()
	if dead != 0 || delayed == 0 || lossy < 3*time.Second {
		t.Fatalf("lossy links: %d false deaths, %d writes held back in %v", dead, delayed, lossy)
	}
	fr := &faultsRun{rates: []int{300}, detect: &detectRun{detect: took, link: lossyLink, lossy: lossy}}
	frag, err := json.Marshal(faultsJSON(fr))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(frag), `"false_dead":0`) || !strings.Contains(string(frag), `"detect_s_max":`) {
		t.Errorf("fragment = %s", frag)
	}
	var b strings.Builder
	printFaults(&b, fr)
	if !strings.Contains(b.String(), "silent host") || !strings.Contains(b.String(), "0 healthy members declared dead") {
		t.Errorf("printed:\n%s", b.String())
	}
}

func TestDetectTimings(t *testing.T) {
	env := map[string]string{"BENCH_DETECT_PROBE": "250ms", "BENCH_DETECT_SUSPICION_MULT": "5", "BENCH_DETECT_AWARENESS": "8"}
	tune, err := detectTimings(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var c gossip.Config
	tune(&c)
	if c.ProbeInterval != 250*time.Millisecond || c.SuspicionMult != 5 || c.AwarenessMaxMult != 8 {
		t.Errorf("tuned: %+v", c)
	}
	for _, bad := range []map[string]string{{"BENCH_DETECT_PROBE": "soon"}, {"BENCH_DETECT_SUSPICION_MULT": "0"}, {"BENCH_DETECT_AWARENESS": "x"}} {
		if _, err := detectTimings(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if d, err := lossyDuration(func(string) string { return "" }); err != nil || d != 2*time.Minute {
		t.Errorf("lossyDuration default = %v, %v", d, err)
	}
	if l, err := lossyLinkFrom(func(string) string { return "0.2" }); err != nil || l.Loss != 0.2 || l.Jitter != lossyLink.Jitter {
		t.Errorf("lossyLinkFrom(0.2) = %+v, %v", l, err)
	}
	if _, err := lossyLinkFrom(func(string) string { return "5%" }); err == nil {
		t.Error("lossyLinkFrom accepted 5%")
	}
}
