package tlscache

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testclock"
)

// epoch is where the fake clocks of these tests start.
var epoch = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type fakeClock = testclock.Clock

func newClock() *fakeClock { return testclock.New(epoch) }

// hookLog records hook calls.
type hookLog struct {
	mu      sync.Mutex
	news    []string
	removes []string // "id:reason"
}

func (h *hookLog) newHook(s *Session) error {
	h.mu.Lock()
	h.news = append(h.news, string(s.ID))
	h.mu.Unlock()
	return nil
}

func (h *hookLog) removeHook(s *Session, why Reason) error {
	h.mu.Lock()
	h.removes = append(h.removes, fmt.Sprintf("%s:%s", s.ID, why))
	h.mu.Unlock()
	return nil
}

func (h *hookLog) removed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.removes)
}

// newTestCache returns a cache on a fake clock whose new and remove hooks
// are logged.
func newTestCache(t *testing.T, opts Options) (*Cache, *fakeClock, *hookLog) {
	t.Helper()
	clock := newClock()
	log := &hookLog{}
	opts.Now = clock.Now
	if opts.NewHook == nil {
		opts.NewHook = log.newHook
	}
	if opts.RemoveHook == nil {
		opts.RemoveHook = log.removeHook
	}
	return New(&opts), clock, log
}

// newSessionAt returns a session with its creation time and timeout set.
func newSessionAt(id, idContext, state []byte, created time.Time, timeout time.Duration) *Session {
	s := &Session{ID: id, IDContext: idContext, State: state}
	s.SetCreated(created)
	s.SetTimeout(timeout)
	return s
}

// sess returns a session created at epoch+created with the given timeout.
func sess(id string, created, timeout time.Duration) *Session {
	return newSessionAt([]byte(id), nil, []byte("state-"+id), epoch.Add(created), timeout)
}

// ids lists the IDs of the cached sessions, sorted.
func ids(c *Cache) []string {
	var out []string
	for s := range c.All() {
		out = append(out, string(s.ID))
	}
	slices.Sort(out)
	return out
}
