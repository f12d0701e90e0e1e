package tlscache

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Printing or logging a session in any way shows no byte of its state.
func TestSessionPrintsWithoutState(t *testing.T) {
	secret := []byte("RESUMPTION-SECRET-0123456789abcdef")
	s := &Session{ID: []byte("id-1"), IDContext: []byte("ctx"), State: secret, Value: secret}
	c := New(&Options{Now: newClock().Now})
	c.Add(s)
	// The state must not appear as text, as hex, as base64 or as the
	// decimal bytes fmt prints for a []byte.
	forbidden := []string{string(secret), hex.EncodeToString(secret), "RESUMPTION", fmt.Sprint(secret[:4])[1:10]}
	forbidden = append(forbidden, strings.Trim(fmt.Sprintf("%q", secret[:8]), `"`))
	b64, _ := json.Marshal(secret)
	forbidden = append(forbidden, strings.Trim(string(b64), `"`)[:12])

	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, verb+" "+fmt.Sprintf(verb, s))
	}
	outs = append(outs, "Sprint "+fmt.Sprint(s), "String "+s.String(), "slice %v "+fmt.Sprintf("%v", []*Session{s}),
		"struct %+v "+fmt.Sprintf("%+v", struct{ S *Session }{s}))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("session", "s", s, "any", any(s))
		outs = append(outs, "slog "+buf.String())
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, "json "+string(js))

	for _, out := range outs {
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("%s\nshows %q of the state", out, f)
			}
		}
		if !strings.Contains(out, hex.EncodeToString(s.ID)) && !strings.Contains(out, `"id":"`+hex.EncodeToString(s.ID)) {
			t.Errorf("%s\ndoes not name the session's ID", out)
		}
	}
	t.Logf("%%+v: %+v", s)
	t.Logf("json: %s", js)
	var nilSession *Session
	if got := fmt.Sprint(nilSession); !strings.Contains(got, "nil") {
		t.Errorf("a nil session prints %q", got)
	}
}

// SetTimeout(0) restores the default, as Options.Timeout zero and
// OpenSSL's SSL_CTX_set_timeout(ctx, 0) do; it does not make sessions
// expire at once.
func TestSetTimeoutZeroMeansDefault(t *testing.T) {
	clock := newClock()
	c := New(&Options{Now: clock.Now, Timeout: time.Minute})
	if prev := c.SetTimeout(0); prev != time.Minute {
		t.Errorf("SetTimeout(0) returned %v, want the previous minute", prev)
	}
	if got := c.Timeout(); got != DefaultTimeout {
		t.Fatalf("Timeout after SetTimeout(0) = %v, want DefaultTimeout %v", got, DefaultTimeout)
	}
	s := &Session{ID: []byte("a"), State: []byte("x")}
	c.Add(s)
	clock.Advance(time.Hour)
	if c.Lookup([]byte("a"), nil) != s {
		t.Error("a session added after SetTimeout(0) expired within an hour")
	}
	if got := c.SetTimeout(-time.Second); got != DefaultTimeout || c.Timeout() != DefaultTimeout {
		t.Errorf("a negative timeout changed it: %v", c.Timeout())
	}
}
