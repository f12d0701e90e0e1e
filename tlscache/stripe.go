package tlscache

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The lookup path (a server's resumption, a client's Get) writes nothing
// shared but a reader count and hit counters. On one cache line each, two
// cores doing lookups at once fight over it and each lookup costs more than
// on one core (tlscache-bench: client Get 84 ns/op at GOMAXPROCS 1, 107
// ns/op at 2). So the reader count and the lookup counters are striped: a
// goroutine uses the stripe its stack address picks, and the totals are
// sums over the stripes.

const stripeCount = 16 // a power of two

// stripe picks a stripe for the calling goroutine from an address on its
// stack. Goroutines have separate stacks, so goroutines running at the same
// time mostly pick different stripes (two of them collide about once in
// ten: tlscache-bench's parallel rows show it as an outlier round). A
// goroutine whose stack moved picks another: the choice affects speed only,
// never a result.
func stripe() int {
	var x byte
	a := uint64(uintptr(unsafe.Pointer(&x)))
	return int((a >> 12) * 0x9e3779b97f4a7c15 >> (64 - 4))
}

// paddedInt64 is 128 bytes: in an array, each one's value is on a cache line
// of its own, however the array is aligned.
type paddedInt64 struct {
	atomic.Int64
	_ [120]byte
}

// stripedCounter is a counter that goroutines on different cores add to
// without sharing a cache line. Load sums the stripes: it is exact once the
// adds it should see have returned.
type stripedCounter struct {
	s [stripeCount]paddedInt64
}

func (c *stripedCounter) Add(n int64) { c.s[stripe()].Add(n) }

func (c *stripedCounter) Load() int64 {
	var sum int64
	for i := range c.s {
		sum += c.s[i].Load()
	}
	return sum
}

// rwLock is a reader-writer lock whose readers do not share a cache line
// while no writer comes: a reader adds one to its stripe of the reader
// count, and a writer, holding mu, turns readers away (open false) and waits
// until the count is zero. The count's stripes may go negative, since a
// reader may unlock on another stripe than it locked on (its stack moved);
// their sum is what counts.
//
// Readers that find no entry wait on mu until the writer is done, so
// writers do not starve. The zero value is an unlocked lock.
type rwLock struct {
	closed  atomic.Bool  // a writer holds or waits for the lock; readers keep off
	mu      sync.RWMutex // writers hold it; readers only wait on it
	_       [64]byte     // keep the first stripe off closed's cache line
	readers stripedCounter
}

func (l *rwLock) RLock() {
	for {
		if !l.closed.Load() {
			i := stripe()
			l.readers.s[i].Add(1)
			if !l.closed.Load() {
				return
			}
			// A writer closed the door meanwhile: step back out, on the
			// same stripe, so that a writer summing the count never sees
			// this step back without the step in.
			l.readers.s[i].Add(-1)
		}
		l.mu.RLock() // wait for the writer
		l.mu.RUnlock()
	}
}

func (l *rwLock) RUnlock() { l.readers.Add(-1) }

func (l *rwLock) Lock() {
	l.mu.Lock()
	l.closed.Store(true)
	// Every reader that got in added to the count before this Store (else
	// it saw closed and stepped back), so the sum sees its step in; it is
	// zero once each has stepped out.
	for l.readers.Load() != 0 {
		runtime.Gosched()
	}
}

func (l *rwLock) Unlock() {
	l.closed.Store(false)
	l.mu.Unlock()
}
