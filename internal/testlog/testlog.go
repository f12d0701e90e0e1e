// Package testlog is a slog.Handler for tests that keeps what it is given.
package testlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Record is one line given to a Handler.
type Record struct {
	At   time.Time
	Text string // "LEVEL message key=value ..."
}

// A Handler keeps the lines it is given; it is safe for concurrent use.
type Handler struct {
	mu   sync.Mutex
	recs []Record
}

func (h *Handler) Enabled(context.Context, slog.Level) bool { return true }
func (h *Handler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *Handler) WithGroup(string) slog.Handler            { return h }

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, Record{At: r.Time, Text: b.String()})
	h.mu.Unlock()
	return nil
}

// Records returns the lines so far, with their times.
func (h *Handler) Records() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Record(nil), h.recs...)
}

// Want returns the lines so far, failing t at step unless there are n.
func (h *Handler) Want(t testing.TB, step string, n int) []string {
	t.Helper()
	got := h.Lines()
	if len(got) != n {
		t.Fatalf("%s: %d lines, want %d: %q", step, len(got), n, got)
	}
	return got
}

// Lines returns the lines so far.
func (h *Handler) Lines() []string {
	var out []string
	for _, r := range h.Records() {
		out = append(out, r.Text)
	}
	return out
}

// Count returns how many lines contain s, and when the first was logged.
func (h *Handler) Count(s string) (n int, first time.Time) {
	for _, r := range h.Records() {
		if strings.Contains(r.Text, s) {
			if n == 0 {
				first = r.At
			}
			n++
		}
	}
	return n, first
}
