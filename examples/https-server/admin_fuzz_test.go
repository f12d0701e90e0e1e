package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// FuzzAdminRequest sends the admin API requests of any method, path,
// content type and body: a panic, a 5xx, or a refused request that still
// changed the cache fails; an accepted change leaves a valid config.
func FuzzAdminRequest(f *testing.F) {
	for _, seed := range []struct{ method, path, ctype, body string }{
		{"PATCH", "/config", "application/json", `{"mode":"Server|NoAutoClear","timeout":"1h","size":100}`},
		{"PATCH", "/config", "application/json", `{"timeout":"0s"}`},
		{"PATCH", "/config", "application/json", `{"size":-1}`},
		{"PATCH", "/config", "application/json; charset=utf-8", `{"mode":"0x10000"}`},
		{"PATCH", "/config", "text/plain", `{"size":1}`},
		{"PATCH", "/config", "application/json", `{"size":1}{"size":2}`},
		{"POST", "/sessions/flush-all", "application/json", ""},
		{"POST", "/sessions/flush-expired", "", ""},
		{"DELETE", "/sessions/ab", "application/json", ""},
		{"DELETE", "/sessions/zz", "application/json", ""},
		{"GET", "/sessions", "", ""},
		{"GET", "/metrics", "", ""},
	} {
		f.Add(seed.method, seed.path, seed.ctype, seed.body)
	}
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		if !validMethod(method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?") || strings.ContainsAny(ctype, "\r\n") {
			return // not an HTTP request a server would parse
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return
		}
		cache := tlscache.New(nil)
		for i := range 3 {
			cache.Add(&tlscache.Session{ID: []byte{0xab, byte(i)}, State: []byte("state")})
		}
		a := &admin{
			cache: cache, srv: adapter.NewServer(cache, nil), policy: "all",
			log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9443},
		}
		before := a.config()
		req := httptest.NewRequest(method, "http://127.0.0.1:9443"+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		a.routes().ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s (%s) %q: %d %s", method, path, ctype, body, w.Code, w.Body)
		}
		after := a.config()
		if w.Code != http.StatusOK {
			if after != before || cache.Len() != 3 {
				t.Fatalf("refused %s %s (%d) changed the cache: %+v -> %+v, %d sessions", method, path, w.Code, before, after, cache.Len())
			}
			return
		}
		if cache.Timeout() <= 0 || cache.Size() < 0 || cache.Mode()&^(tlscache.Both|tlscache.NoAutoClear|tlscache.NoInternal|tlscache.UpdateTime) != 0 {
			t.Fatalf("accepted %s %s %q left mode %v timeout %v size %d", method, path, body, cache.Mode(), cache.Timeout(), cache.Size())
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if !('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
