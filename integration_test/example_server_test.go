package integration_test

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Black-box tests of examples/https-server: the binary, started on free
// ports, driven by openssl s_client, gnutls-cli and curl.

var exampleVersions = []struct {
	name, sClient, gnutls, log string
}{
	{"TLS12", "-tls1_2", "TLS1.2", `tls="TLS 1.2"`},
	{"TLS13", "-tls1_3", "TLS1.3", `tls="TLS 1.3"`},
}

const (
	getRoot = "GET / HTTP/1.0\r\nAccept: application/json\r\n\r\n"
	login   = "POST /login HTTP/1.0\r\n\r\n"
	logout  = "POST /logout HTTP/1.0\r\n\r\n"
)

// Under -policy all every session resumes: openssl and gnutls, TLS 1.2 and
// 1.3, and the log has one line per connection saying so.
func TestExamplePolicyAll(t *testing.T) {
	for _, v := range exampleVersions {
		t.Run(v.name, func(t *testing.T) {
			s := startExample(t, "-policy", "all")
			sess := filepath.Join(t.TempDir(), "sess.pem")

			got, out := s.sClientHTTP(t, v.sClient, "-sess_out", sess, getRoot)
			if got != "New" || !strings.Contains(out, `"resumed": false`) {
				t.Fatalf("first s_client: %s, want New; the page:\n%s", got, out)
			}
			got, out = s.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot)
			if got != "Reused" || !strings.Contains(out, `"resumed": true`) {
				t.Fatalf("s_client -sess_in: %s, want Reused; the page:\n%s", got, out)
			}
			lines := s.logs.wait(t, connLine, 2)
			for i, want := range []string{"resumed=false", "resumed=true"} {
				if !strings.Contains(lines[i], v.log) || !strings.Contains(lines[i], want) || !strings.Contains(lines[i], " issued=") {
					t.Errorf("log line of connection %d: %s; want %s, %s and issued=", i, lines[i], v.log, want)
				}
			}
			if !strings.Contains(lines[1], " from=") {
				t.Errorf("the resumed connection's log line names no session it resumed from: %s", lines[1])
			}

			resumed, out := s.gnutlsResume(t, v.gnutls)
			if !resumed {
				t.Fatalf("gnutls-cli --resume did not resume:\n%s", out)
			}
			s.logs.wait(t, connLine, 4)
			if n := s.logs.count(connLine); n != 4 {
				t.Errorf("%d connection lines for 4 connections:\n%s", n, s.logs)
			}
		})
	}
}

// Under -policy none nothing resumes.
func TestExamplePolicyNone(t *testing.T) {
	s := startExample(t, "-policy", "none")
	sess := filepath.Join(t.TempDir(), "sess.pem")
	for _, v := range exampleVersions {
		s.sClientHTTP(t, v.sClient, "-sess_out", sess, getRoot)
		if got, _ := s.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "New" {
			t.Errorf("%s: s_client -sess_in: %s, want New", v.name, got)
		}
		if resumed, out := s.gnutlsResume(t, v.gnutls); resumed {
			t.Errorf("%s: gnutls-cli resumed:\n%s", v.name, out)
		}
	}
}

// Under -policy login a session resumes only once POST /login has approved
// it, and no longer after POST /logout.
func TestExamplePolicyLogin(t *testing.T) {
	for _, v := range exampleVersions {
		t.Run(v.name, func(t *testing.T) {
			s := startExample(t, "-policy", "login")
			sess := filepath.Join(t.TempDir(), "sess.pem")
			step := func(what, sessFlag, request, want string) string {
				t.Helper()
				got, out := s.sClientHTTP(t, v.sClient, sessFlag, sess, request)
				if got != want {
					t.Fatalf("%s: s_client %s: %s, want %s\n%s", what, sessFlag, got, want, out)
				}
				return out
			}
			step("before login", "-sess_out", getRoot, "New")
			step("before login", "-sess_in", getRoot, "New")
			if resumed, out := s.gnutlsResume(t, v.gnutls); resumed {
				t.Fatalf("gnutls-cli resumed before any login:\n%s", out)
			}
			if n := s.sessions(t).Count; n != 0 {
				t.Fatalf("%d sessions cached before login, want 0", n)
			}

			if out := step("login", "-sess_out", login, "New"); !strings.Contains(out, `{"sessions_added":1}`) {
				t.Fatalf("POST /login did not add its session:\n%s", out)
			}
			step("after login", "-sess_in", getRoot, "Reused")
			step("after login, again", "-sess_in", getRoot, "Reused")

			out := step("logout", "-sess_in", logout, "Reused")
			if !regexp.MustCompile(`\{"sessions_removed":[1-9]\d*\}`).MatchString(out) {
				t.Fatalf("POST /logout removed nothing:\n%s", out)
			}
			step("after logout", "-sess_in", getRoot, "New")
			if n := s.sessions(t).Count; n != 0 {
				t.Errorf("%d sessions cached after logout, want 0: %+v", n, s.sessions(t))
			}
		})
	}
}

// GET / with curl: JSON for Accept: application/json, HTML otherwise.
func TestExamplePages(t *testing.T) {
	s := startExample(t)
	url := "https://localhost:" + port(t, s.addr) + "/"
	resolve := "localhost:" + port(t, s.addr) + ":127.0.0.1"
	status, ctype, body := curl(t, "GET", url, "", "--cacert", s.caFile, "--resolve", resolve, "-H", "Accept: application/json")
	if status != 200 || ctype != "application/json" {
		t.Fatalf("GET / as JSON: %d %s\n%s", status, ctype, body)
	}
	var page struct {
		Version    string            `json:"tls_version"`
		ServerName string            `json:"server_name"`
		Resumed    bool              `json:"resumed"`
		Issued     []json.RawMessage `json:"issued"`
		Policy     string            `json:"policy"`
		Stats      struct {
			AcceptGood int64 `json:"accept_good"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if page.Version != "TLS 1.3" || page.ServerName != "localhost" || page.Resumed ||
		len(page.Issued) != 1 || page.Policy != "all" || page.Stats.AcceptGood != 1 {
		t.Errorf("GET / = %+v\n%s", page, body)
	}
	status, ctype, body = curl(t, "GET", url, "", "--cacert", s.caFile, "--resolve", resolve)
	if status != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, ">New TLS 1.3 connection</h1>") {
		t.Errorf("GET / as HTML: %d %s\n%s", status, ctype, body)
	}
}

// The admin API removes a session, and the client holding it then makes a
// full handshake; flushes and config changes take effect.
func TestExampleAdminRemovesSessions(t *testing.T) {
	for _, v := range exampleVersions {
		t.Run(v.name, func(t *testing.T) {
			s := startExample(t)
			sess := filepath.Join(t.TempDir(), "sess.pem")
			s.sClientHTTP(t, v.sClient, "-sess_out", sess, getRoot)
			list := s.sessions(t)
			if list.Count != 1 {
				t.Fatalf("after one connection: %+v, want one session", list)
			}
			id := list.Sessions[0].ID
			if line := s.logs.wait(t, connLine, 1)[0]; !strings.Contains(line, " issued="+id) {
				t.Errorf("the log says %s; the admin API lists %s", line, id)
			}
			if list.Sessions[0].ServerName != "localhost" || list.Sessions[0].Expired ||
				!list.Sessions[0].Expires.Equal(list.Sessions[0].Created.Add(2*time.Hour)) {
				t.Errorf("GET /sessions: %+v", list.Sessions[0])
			}
			if got, _ := s.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "Reused" {
				t.Fatalf("before the delete: %s, want Reused", got)
			}

			var removed struct {
				Removed string `json:"removed"`
			}
			s.adminJSON(t, "DELETE", "/sessions/"+strings.ToUpper(id[:10]), "", 200, &removed)
			if removed.Removed != id {
				t.Errorf("DELETE removed %q, want %q", removed.Removed, id)
			}
			for _, l := range s.sessions(t).Sessions {
				if l.ID == id {
					t.Fatalf("session %s still listed after its DELETE", id)
				}
			}
			if got, _ := s.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "New" {
				t.Fatalf("after the admin removed the session: %s, want New", got)
			}

			// Flush all: nothing resumes.
			s.sClientHTTP(t, v.sClient, "-sess_out", sess, getRoot)
			var flushed struct {
				Removed int `json:"removed"`
			}
			s.adminJSON(t, "POST", "/sessions/flush-all", "", 200, &flushed)
			if flushed.Removed == 0 || s.sessions(t).Count != 0 {
				t.Fatalf("flush-all removed %d, and %d remain", flushed.Removed, s.sessions(t).Count)
			}
			if got, _ := s.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "New" {
				t.Fatalf("after flush-all: %s, want New", got)
			}
		})
	}
}

// The admin API changes the cache at runtime, and /metrics counts exactly
// what happened: evictions, hits, misses, expiry.
func TestExampleAdminConfigAndMetrics(t *testing.T) {
	s := startExample(t, "-size", "1")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	sc := func(name, flag, file, want string) {
		t.Helper()
		if got, out := s.sClientHTTPAs(t, name, "-tls1_3", flag, file, getRoot); got != want {
			t.Fatalf("s_client -servername %s %s %s: %s, want %s\n%s", name, flag, filepath.Base(file), got, want, out)
		}
	}
	// Each TLS 1.3 handshake issues one ticket, and with -size 1 each
	// new one evicts the one cached before it.
	sc("localhost", "-sess_out", a, "New")    // a cached
	sc("localhost", "-sess_in", a, "Reused")  // a hit; a's successor evicts a
	sc("localhost", "-sess_in", a, "New")     // a miss; evicts the successor
	sc("localhost", "-sess_out", b, "New")    // b cached, evicting
	sc("other.example", "-sess_in", b, "New") // a context mismatch (b stays), evicting b
	sc("localhost", "-sess_in", b, "New")     // a miss; evicting
	want := map[string]float64{
		"tlscache_sessions":                  1,
		"tlscache_accept_total":              6,
		"tlscache_accept_good_total":         6,
		"tlscache_connect_total":             0,
		"tlscache_connect_good_total":        0,
		"tlscache_hits_total":                1,
		"tlscache_cb_hits_total":             0,
		"tlscache_misses_total":              2,
		"tlscache_timeouts_total":            0,
		"tlscache_cache_full_total":          5,
		"tlscache_context_mismatches_total":  1,
		"tlscache_store_errors_total":        0,
		"tlscache_internal_hits_total":       1,
		"tlscache_external_hits_total":       0,
		"tlscache_too_large_total":           0,
		"tlscache_refused_total":             0,
		"tlscache_size_limit":                1,
		"tlscache_timeout_seconds":           7200,
		"tlscache_mode":                      2,
		"tlscache_early_data_offered_total":  0, // TCP: no early data
		"tlscache_early_data_accepted_total": 0,
		"tlscache_early_data_replays_total":  0,
		"tlscache_early_data_refused_total":  0,
	}
	checkMetrics(t, s, want)

	// Runtime config: a larger cache and sessions that expire at once.
	var changed struct{ Previous, Config adminConfig }
	s.adminJSON(t, "PATCH", "/config", `{"size": 0, "timeout": "1ms", "mode": "Server|NoAutoClear"}`, 200, &changed)
	if changed.Previous != (adminConfig{"all", "Server", "2h0m0s", 1}) || changed.Config != (adminConfig{"all", "Server|NoAutoClear", "1ms", 0}) {
		t.Fatalf("PATCH /config: %+v", changed)
	}
	var cfg adminConfig
	s.adminJSON(t, "GET", "/config", "", 200, &cfg)
	if cfg != changed.Config {
		t.Fatalf("GET /config = %+v after PATCH said %+v", cfg, changed.Config)
	}
	sc("localhost", "-sess_out", a, "New") // a session with a 1ms lifetime
	waitExpired(t, s, 1)
	sc("localhost", "-sess_in", a, "New") // found expired: a timeout, not a miss; its successor expires too
	waitExpired(t, s, 1)
	var flushed struct {
		Removed int `json:"removed"`
	}
	s.adminJSON(t, "POST", "/sessions/flush-expired", "", 200, &flushed)
	if flushed.Removed != 1 {
		t.Errorf("flush-expired removed %d, want 1", flushed.Removed)
	}
	want["tlscache_sessions"] = 1 // the last one cached under -size 1, with a 2h lifetime
	want["tlscache_accept_total"] = 8
	want["tlscache_accept_good_total"] = 8
	want["tlscache_timeouts_total"] = 1
	want["tlscache_size_limit"] = 0
	want["tlscache_timeout_seconds"] = 0.001
	want["tlscache_mode"] = 0x82
	checkMetrics(t, s, want)
}

// waitExpired polls the session list until n sessions are listed expired:
// the 1ms lifetime has passed on the server's clock.
func waitExpired(t *testing.T, s *exampleServer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		expired := 0
		for _, l := range s.sessions(t).Sessions {
			if l.Expired {
				expired++
			}
		}
		if expired >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions expired after 10s, want %d: %+v", expired, n, s.sessions(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func checkMetrics(t *testing.T, s *exampleServer, want map[string]float64) {
	t.Helper()
	got := s.metrics(t)
	for name, v := range want {
		if m, ok := got[name]; !ok || m.value != v {
			t.Errorf("%s = %v (present %v), want %v", name, m.value, ok, v)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && strings.HasPrefix(name, "tlscache_") {
			t.Errorf("unexpected metric %s", name)
		}
	}
	// The Go runtime's and the process's collectors are registered too.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no metric %s", name)
		}
	}
}

// Bad admin input gets a 4xx with a message that says what is wrong, and
// changes nothing.
func TestExampleAdminBadInput(t *testing.T) {
	s := startExample(t)
	// Sessions until two IDs share their first hex digit (17 suffice):
	// a one-digit prefix is then ambiguous.
	var ambiguous string
	for i := 0; ambiguous == "" && i < 17; i++ {
		s.sClientHTTP(t, "-tls1_3", "-sess_out", filepath.Join(t.TempDir(), "s.pem"), getRoot)
		seen := map[byte]bool{}
		for _, l := range s.sessions(t).Sessions {
			if seen[l.ID[0]] {
				ambiguous = l.ID[:1]
			}
			seen[l.ID[0]] = true
		}
	}
	list := s.sessions(t)
	unknown := "ffffffffffffffff" // listed IDs are 16-digit prefixes
	for _, l := range list.Sessions {
		if l.ID == unknown {
			unknown = "0000000000000000"
		}
	}
	before := func() (string, string) {
		return s.adminJSON(t, "GET", "/config", "", 200, nil), s.adminJSON(t, "GET", "/sessions", "", 200, nil)
	}
	config0, sessions0 := before()

	for _, tt := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"DELETE", "/sessions/" + unknown, "", 404, `no cached session ID starts with "` + unknown + `"`},
		{"DELETE", "/sessions/" + ambiguous, "", 409, `cached session IDs start with "` + ambiguous + `": give more digits`},
		{"DELETE", "/sessions/xyz", "", 400, `session ID "xyz" is not a hex prefix`},
		{"DELETE", "/sessions/" + strings.Repeat("0", 33), "", 400, "is not a hex prefix of at most 32 digits"},
		{"PATCH", "/config", `{"size": 10, "mode": "Sever"}`, 400, `mode: tlscache: unknown mode flag "Sever"`},
		{"PATCH", "/config", `{"mode": "0x10000"}`, 400, "unknown bits"},
		{"PATCH", "/config", `{"mode": "Both", "timeout": "forever"}`, 400, `timeout: "forever" is not a Go duration`},
		{"PATCH", "/config", `{"timeout": "-5s"}`, 400, "timeout: -5s is not positive"},
		{"PATCH", "/config", `{"timeout": 300}`, 400, `field "timeout": want a string, got a JSON number`},
		{"PATCH", "/config", `{"size": -1, "mode": "Server"}`, 400, "size: -1 is negative"},
		{"PATCH", "/config", `{"size": "10"}`, 400, `field "size": want a number (an integer), got a JSON string`},
		{"PATCH", "/config", `{"size": 10, "policy": "none"}`, 400, `unknown field "policy"`},
		{"PATCH", "/config", `{"size": 10`, 400, "bad JSON"},
		{"PATCH", "/config", `{"size": 10} {"size": 11}`, 400, "more than one JSON value"},
		{"PATCH", "/config", `[]`, 400, "request body"},
		{"PATCH", "/config", `{}`, 400, "nothing to change"},
		{"PATCH", "/config", ``, 400, "empty; want a JSON object"},
	} {
		var e adminError
		s.adminJSON(t, tt.method, tt.path, tt.body, tt.status, &e)
		if !strings.Contains(e.Error, tt.message) {
			t.Errorf("%s %s %s: error %q, want it to say %q", tt.method, tt.path, tt.body, e.Error, tt.message)
		}
		if config, sessions := before(); !sameJSON(config, config0) || !sameJSON(sessions, sessions0) {
			t.Fatalf("%s %s %s changed the server:\nconfig %s\nwas    %s\nsessions %s\nwere     %s",
				tt.method, tt.path, tt.body, config, config0, sessions, sessions0)
		}
	}
	if ambiguous == "" {
		t.Fatalf("17 sessions and no two share a first hex digit: %+v", list)
	}
	// Wrong methods and paths: the mux's own 405 and 404.
	if status, _, _ := curl(t, "POST", "http://"+s.admin+"/metrics", ""); status != 405 {
		t.Errorf("POST /metrics: %d, want 405", status)
	}
	if status, _, _ := curl(t, "GET", "http://"+s.admin+"/nope", ""); status != 404 {
		t.Errorf("GET /nope: %d, want 404", status)
	}
}

// With a token (from the environment), the admin API wants it, compared in
// full; SIGINT stops both listeners.
func TestExampleAdminToken(t *testing.T) {
	s := startExampleEnv(t, []string{"TLSCACHE_ADMIN_TOKEN=s3cret"})
	for _, header := range []string{"", "Authorization: Bearer s3cre", "Authorization: Bearer s3cret2", "Authorization: Basic s3cret", "Authorization: s3cret"} {
		var e adminError
		extra := []string{}
		if header != "" {
			extra = []string{"-H", header}
		}
		s.adminJSON(t, "GET", "/config", "", 401, &e, extra...)
		if !strings.Contains(e.Error, "send Authorization: Bearer <token>") {
			t.Errorf("%q: error %q", header, e.Error)
		}
		s.adminJSON(t, "POST", "/sessions/flush-all", "", 401, nil, extra...)
	}
	var cfg adminConfig
	s.adminJSON(t, "GET", "/config", "", 200, &cfg, "-H", "Authorization: Bearer s3cret")
	if status, _, _ := curl(t, "GET", "http://"+s.admin+"/metrics", "", "-H", "Authorization: bearer s3cret"); status != 200 {
		t.Errorf("GET /metrics with the token: %d", status)
	}

	s.stop(t, syscall.SIGINT)
	for _, addr := range []string{s.addr, s.admin} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after SIGINT", addr)
		}
	}
}

// The admin API is not reachable through this machine's other addresses
// unless -admin-public says so, and the server refuses to bind it to a
// non-loopback address by itself.
func TestExampleAdminLoopbackOnly(t *testing.T) {
	external := nonLoopbackIP(t)

	// The default address is a loopback one. The test reads it from the
	// flag's help rather than binding it: another process may hold the port.
	out, _ := exec.Command(buildExample(t), "-h").CombinedOutput()
	if !regexp.MustCompile(`-admin string\n.*\(default "127\.0\.0\.1:9443"\)`).Match(out) {
		t.Fatalf("the admin API's default address is not 127.0.0.1:9443:\n%s", out)
	}

	s := startExample(t)
	checkUnreachable(t, s, external)

	refused := []string{"0.0.0.0:0", ":0", "[::]:0", "example.com:0"}
	if external != nil {
		refused = append(refused, net.JoinHostPort(external.String(), "0"))
	}
	for _, addr := range refused {
		s := launchExample(t, nil, "-addr", "127.0.0.1:0", "-admin", addr)
		line := s.logs.wait(t, regexp.MustCompile(`msg=https-server err=|msg=admin addr=`), 1)[0]
		if !strings.Contains(line, "is not a loopback address") {
			t.Errorf("-admin %s: %s", addr, line)
			continue
		}
		s.waitExit(t)
		if s.err == nil || s.logs.count(servingLine) != 0 {
			t.Errorf("-admin %s: exit %v, log:\n%s", addr, s.err, s.logs)
		}
	}

	// A positive control: with -admin-public the same check does reach it.
	p := startExampleEnv(t, []string{"TLSCACHE_ADMIN_TOKEN=s3cret"}, "-admin", "0.0.0.0:0", "-admin-public")
	p.logs.wait(t, regexp.MustCompile(`level=WARN msg="THE ADMIN API IS REACHABLE FROM THE NETWORK`), 1)
	if external == nil {
		return
	}
	url := "http://" + net.JoinHostPort(external.String(), port(t, p.admin)) + "/config"
	if status, _, body := curl(t, "GET", url, "", "-H", "Authorization: Bearer s3cret"); status != 200 {
		t.Errorf("-admin-public: GET %s: %d %s", url, status, body)
	}
}

// checkUnreachable checks that s's admin API answers on loopback and
// refuses connections on the external address, if the machine has one.
func checkUnreachable(t *testing.T, s *exampleServer, external net.IP) {
	t.Helper()
	host, _, _ := net.SplitHostPort(s.admin)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("the admin API listens on %s", s.admin)
	}
	s.adminJSON(t, "GET", "/config", "", 200, nil)
	if external == nil {
		return
	}
	addr := net.JoinHostPort(external.String(), port(t, s.admin))
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the admin API (%s) is reachable at %s", s.admin, addr)
	}
}

// nonLoopbackIP returns an address of this machine other than loopback
// (IPv4 preferred), or nil, said in the test's log, if it has none: then
// nothing but loopback can reach any listener.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var v6 net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.IsUnspecified() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP
		}
		if v6 == nil {
			v6 = n.IP
		}
	}
	if v6 == nil {
		t.Logf("this machine has no address but loopback (%v): the reachability checks have nothing to dial", addrs)
	}
	return v6
}
