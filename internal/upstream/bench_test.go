package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

func benchUpstream(b *testing.B, policy string) *Upstream {
	bal := config.Balancer{Policy: policy}
	if policy == "consistent_hash" {
		bal.HashOn = &config.HashOn{Header: "X-User"}
	}
	u, _ := newTest(b, config.Upstream{Endpoints: addrs(10), Balancer: bal}, nil)
	for i, e := range u.Endpoints() {
		e.Begin()
		e.Done(time.Duration(i+1)*time.Millisecond, Success)
	}
	return u
}

func benchPick(b *testing.B, policy string) {
	u := benchUpstream(b, policy)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		k := uint64(1)
		for b.Loop() {
			k = mix64(k)
			if _, err := u.Pick(k, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			k := uint64(1)
			for pb.Next() {
				k = mix64(k)
				if _, err := u.Pick(k, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkPickRoundRobin(b *testing.B)     { benchPick(b, "round_robin") }
func BenchmarkPickLeastRequest(b *testing.B)   { benchPick(b, "least_request") }
func BenchmarkPickConsistentHash(b *testing.B) { benchPick(b, "consistent_hash") }

func BenchmarkAttempt(b *testing.B) {
	u := benchUpstream(b, "least_request")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, err := u.Acquire(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			e, _ := u.Pick(0, nil)
			e.Begin()
			e.Done(time.Millisecond, Success)
			release()
		}
	})
}
