//go:build race

package testenv

// RaceEnabled says the race detector is on. Under it sync.Pool drops a
// quarter of what is put back, at random, so a test that counts the
// allocations of pooled code cannot expect zero (make test runs those
// tests again without it).
const RaceEnabled = true
