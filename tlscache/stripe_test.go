package tlscache

import (
	"runtime"
	"sync"
	"testing"
)

// Readers never see a writer's work half done, and writers exclude each
// other: the race detector checks the rest.
func TestRWLockExclusion(t *testing.T) {
	var l rwLock
	var a, b int // a writer keeps them equal
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 2000 {
				l.Lock()
				a++
				runtime.Gosched()
				b++
				l.Unlock()
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 20000 {
				l.RLock()
				x := a
				runtime.Gosched()
				if y := b; x != y {
					t.Errorf("reader saw a=%d b=%d", x, y)
				}
				l.RUnlock()
			}
		})
	}
	wg.Wait()
	if a != 4000 || b != 4000 || l.readers.Load() != 0 {
		t.Fatalf("a=%d b=%d readers=%d", a, b, l.readers.Load())
	}
}

func TestStripedCounter(t *testing.T) {
	var c stripedCounter
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Add(1)
			}
		})
	}
	wg.Wait()
	if got := c.Load(); got != 8000 {
		t.Fatalf("Load = %d, want 8000", got)
	}
}
