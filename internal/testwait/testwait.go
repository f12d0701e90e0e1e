// Package testwait polls a condition in tests that wait on real processes,
// sockets or goroutines, where no clock can be injected.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every millisecond until it holds, and returns how long
// that took; it fails the test if timeout passes first.
func For(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}
