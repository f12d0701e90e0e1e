package tlscache

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// A Session's State holds its resumption secret, so a Session never prints
// it: String, Format (every fmt verb, %v, %+v and %#v included), LogValue
// (log/slog) and MarshalJSON show the metadata and the length of the state
// only. Value is not shown either: it may hold parsed state.
var (
	_ fmt.Stringer   = (*Session)(nil)
	_ fmt.Formatter  = (*Session)(nil)
	_ slog.LogValuer = (*Session)(nil)
	_ json.Marshaler = (*Session)(nil)
)

// String describes the session without its secret state.
func (s *Session) String() string {
	if s == nil {
		return "tlscache.Session(nil)"
	}
	var b strings.Builder
	b.WriteString("tlscache.Session{ID:")
	b.WriteString(hex.EncodeToString(s.ID))
	b.WriteString(" IDContext:")
	b.WriteString(hex.EncodeToString(s.IDContext))
	if c := s.Created(); !c.IsZero() {
		b.WriteString(" Created:")
		b.WriteString(c.UTC().Format(time.RFC3339Nano))
	}
	if d := s.Timeout(); d != 0 {
		b.WriteString(" Timeout:")
		b.WriteString(d.String())
	}
	b.WriteString(" State:[")
	b.WriteString(strconv.Itoa(len(s.State)))
	b.WriteString(" bytes redacted]")
	if !s.Resumable() {
		b.WriteString(" not resumable")
	}
	b.WriteString("}")
	return b.String()
}

// Format writes [Session.String] for every verb, so that no verb (%x, %#v,
// %+v) reaches the fields.
func (s *Session) Format(f fmt.State, verb rune) { f.Write([]byte(s.String())) }

// LogValue is the session as [log/slog] records it: its metadata and the
// length of its state.
func (s *Session) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{
		slog.String("id", hex.EncodeToString(s.ID)),
		slog.String("id_context", hex.EncodeToString(s.IDContext)),
	}
	if c := s.Created(); !c.IsZero() {
		attrs = append(attrs, slog.Time("created", c))
	}
	if d := s.Timeout(); d != 0 {
		attrs = append(attrs, slog.Duration("timeout", d))
	}
	attrs = append(attrs, slog.Int("state_bytes", len(s.State)), slog.Bool("resumable", s.Resumable()))
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes the session's metadata, never its state: a Session
// that reaches a JSON log or API answer does not leak its secret. The
// session's own encoding, secret included, is [Session.MarshalBinary].
func (s *Session) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	v := struct {
		ID         string        `json:"id"`
		IDContext  string        `json:"id_context"`
		Created    *time.Time    `json:"created,omitempty"`
		Timeout    time.Duration `json:"timeout,omitempty"`
		StateBytes int           `json:"state_bytes"`
		Resumable  bool          `json:"resumable"`
	}{
		ID:         hex.EncodeToString(s.ID),
		IDContext:  hex.EncodeToString(s.IDContext),
		Timeout:    s.Timeout(),
		StateBytes: len(s.State),
		Resumable:  s.Resumable(),
	}
	if c := s.Created(); !c.IsZero() {
		v.Created = &c
	}
	return json.Marshal(v)
}
