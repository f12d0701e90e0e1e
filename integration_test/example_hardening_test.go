package integration_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// adminRequest sends one request to the admin API with exactly these
// headers (Go's client, so that nothing is added), and returns the status
// and the body.
func (s *exampleServer) adminRequest(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// No web page can drive the admin API: not by DNS rebinding (a foreign
// Host), not by a cross-origin form or fetch (Origin, Sec-Fetch-Site), not
// by a "simple" request without a JSON body type. Each refusal changes
// nothing; the same request without the browser's marks goes through.
func TestExampleAdminRefusesWebPages(t *testing.T) {
	s := startExample(t)
	for range 2 {
		s.sClientHTTP(t, "-tls1_3", "-sess_out", filepath.Join(t.TempDir(), "s.pem"), getRoot)
	}
	json := map[string]string{"Content-Type": "application/json"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	_, adminPort, _ := net.SplitHostPort(s.admin)
	config0, sessions0 := s.adminJSON(t, "GET", "/config", "", 200, nil), s.sessions(t)
	if sessions0.Count == 0 {
		t.Fatal("no sessions to protect")
	}
	for _, tt := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		message                  string
	}{
		{"rebinding: read", "GET", "/sessions", "", map[string]string{"Host": "evil.example:" + adminPort}, 421, "is not this admin API's address"},
		{"rebinding: flush", "POST", "/sessions/flush-all", "", with(json, "Host", "evil.example:"+adminPort), 421, "nor a loopback name"},
		{"rebinding: patch", "PATCH", "/config", `{"mode":"Server"}`, with(json, "Host", "localhost.evil.example"), 421, "nor a loopback name"},
		{"another port", "GET", "/config", "", map[string]string{"Host": "127.0.0.1:1"}, 421, "is not this admin API's address"},
		{"cross-origin POST (Origin)", "POST", "/sessions/flush-all", "", with(json, "Origin", "http://evil.example"), 403, "cross-origin request refused"},
		{"cross-origin POST (Sec-Fetch-Site)", "POST", "/sessions/flush-all", "", with(json, "Sec-Fetch-Site", "cross-site"), 403, "cross-origin request refused"},
		{"cross-origin PATCH", "PATCH", "/config", `{"size":1}`, with(json, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"), 403, "cross-origin"},
		{"text/plain POST", "POST", "/sessions/flush-all", "", map[string]string{"Content-Type": "text/plain"}, 415, "needs Content-Type: application/json"},
		{"form PATCH", "PATCH", "/config", `{"size":1}`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"no type DELETE", "DELETE", "/sessions/" + sessions0.Sessions[0].ID, "", nil, 415, "application/json"},
	} {
		status, body := s.adminRequest(t, tt.method, tt.path, tt.body, tt.header)
		if status != tt.status || !strings.Contains(body, tt.message) {
			t.Errorf("%s: %s %s: %d %s, want %d saying %q", tt.name, tt.method, tt.path, status, body, tt.status, tt.message)
		}
		if config, sessions := s.adminJSON(t, "GET", "/config", "", 200, nil), s.sessions(t); !sameJSON(config, config0) || sessions.Count != sessions0.Count {
			t.Fatalf("%s changed the server: config %s (was %s), %d sessions (were %d)", tt.name, config, config0, sessions.Count, sessions0.Count)
		}
	}
	// Positive controls: loopback names and the same-origin marks of a
	// browser on the API's own page pass.
	for _, h := range []map[string]string{{"Host": "localhost:" + adminPort}, {"Host": "127.0.0.1"}, {"Host": "foo.localhost:" + adminPort}} {
		if status, body := s.adminRequest(t, "GET", "/config", "", h); status != 200 {
			t.Errorf("GET /config with %v: %d %s", h, status, body)
		}
	}
	status, body := s.adminRequest(t, "POST", "/sessions/flush-all", "", with(json, "Origin", "http://"+s.admin, "Sec-Fetch-Site", "same-origin"))
	if status != 200 || s.sessions(t).Count != 0 {
		t.Errorf("same-origin JSON POST /sessions/flush-all: %d %s, %d sessions left", status, body, s.sessions(t).Count)
	}
}

// -admin-public without a token does not start: a non-zero exit and a
// message that says what to do; nothing listens.
func TestExampleAdminPublicNeedsToken(t *testing.T) {
	env := []string{"TLSCACHE_ADMIN_TOKEN="}
	for _, addr := range []string{"0.0.0.0:0", "127.0.0.1:0"} {
		s := launchExample(t, env, "-addr", "127.0.0.1:0", "-admin", addr, "-admin-public")
		line := s.logs.wait(t, regexp.MustCompile(`msg=https-server err=|msg=serving`), 1)[0]
		s.waitExit(t)
		var exit *exec.ExitError
		if !errors.As(s.err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("-admin %s -admin-public without a token: exit %v, want non-zero", addr, s.err)
		}
		if !strings.Contains(line, "-admin-public needs a token") || s.logs.count(servingLine) != 0 {
			t.Errorf("-admin %s -admin-public without a token: %s\n%s", addr, line, s.logs)
		}
	}
}

// The HTTPS listener closes a keep-alive connection that stays quiet
// (IdleTimeout), instead of holding its descriptor for good.
func TestExampleClosesIdleConnections(t *testing.T) {
	const idle = time.Second
	s := startExample(t, "-idle-timeout", idle.String())
	pool := thePKI(t).pool
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d, close %v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(20 * idle)) // far beyond: a hang fails the test
	_, err = r.ReadByte()
	took := time.Since(start)
	t.Logf("the idle connection was closed after %v (IdleTimeout %v): %v", took.Round(time.Millisecond), idle, err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept an idle connection open for %v", took)
	}
	if err == nil {
		t.Fatal("the server sent more on an idle connection")
	}
}
