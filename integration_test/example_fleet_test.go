package integration_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/redistest"
)

// startFleet starts n example servers sharing one Redis, one certificate
// and one sealing key (from the environment for the first, from a file for
// the others), with args added.
func startFleet(t *testing.T, n int, args ...string) []*exampleServer {
	t.Helper()
	addr := redistest.Addr(t)
	p := thePKI(t)
	certFile, keyFile := p.files(t, p.leaf(t, "localhost", "127.0.0.1"))
	key := fleet.GenerateKey().Secret()
	keysFile := filepath.Join(t.TempDir(), "fleet.keys")
	if err := os.WriteFile(keysFile, []byte("# the fleet's sealing key\n"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := append([]string{"-redis", addr, "-redis-prefix", redistest.Prefix(t), "-cert", certFile, "-key", keyFile}, args...)
	var servers []*exampleServer
	for i := range n {
		if i == 0 {
			servers = append(servers, startExampleEnv(t, []string{"TLSCACHE_SEAL_KEYS=" + key}, common...))
		} else {
			servers = append(servers, startExample(t, append(common, "-seal-keys", keysFile)...))
		}
	}
	return servers
}

// TestExampleFleetResumesAndRevokes: a session saved from server A resumes
// on server B; deleted through A's admin API, it no longer resumes on B,
// which held it in its internal tier.
func TestExampleFleetResumesAndRevokes(t *testing.T) {
	for _, proto := range []string{"-tls1_2", "-tls1_3"} {
		t.Run(proto[1:], func(t *testing.T) {
			servers := startFleet(t, 2)
			a, b := servers[0], servers[1]
			sess := filepath.Join(t.TempDir(), "sess.pem")
			if got, _ := a.sClientHTTP(t, proto, "-sess_out", sess, "GET / HTTP/1.0\r\n\r\n"); got != "New" {
				t.Fatalf("first connection to A: %s", got)
			}
			for range 2 {
				if got, _ := b.sClientHTTP(t, proto, "-sess_in", sess, "GET / HTTP/1.0\r\n\r\n"); got != "Reused" {
					t.Fatalf("A's session on B: %s, want Reused\nA:\n%s\nB:\n%s", got, a.logs, b.logs)
				}
			}
			if m := b.metrics(t); m["tlscache_external_hits_total"].value != 1 || m["tlscache_internal_hits_total"].value != 1 {
				t.Fatalf("B's hits: external %v internal %v, want 1 and 1 (the store, then its internal tier)",
					m["tlscache_external_hits_total"].value, m["tlscache_internal_hits_total"].value)
			}
			listed := a.sessions(t)
			if listed.Count != 1 {
				t.Fatalf("A lists %d sessions, want the one it issued", listed.Count)
			}
			a.adminJSON(t, "DELETE", "/sessions/"+listed.Sessions[0].ID, "", 200, nil)
			if got, _ := b.sClientHTTP(t, proto, "-sess_in", sess, "GET / HTTP/1.0\r\n\r\n"); got != "New" {
				t.Fatalf("B resumed a session deleted on A: %s\nB:\n%s", got, b.logs)
			}
			if m := b.metrics(t); m["tlscache_fleet_invalidations_total"].value < 1 {
				t.Fatal("B counted no invalidation")
			}
		})
	}
}

// TestExampleFleetLogin: under -policy login, logging in on A lets the
// session resume on B; logging out on B ends it on A too.
func TestExampleFleetLogin(t *testing.T) {
	servers := startFleet(t, 2, "-policy", "login")
	a, b := servers[0], servers[1]
	dir := t.TempDir()
	sess, rotated := filepath.Join(dir, "sess.pem"), filepath.Join(dir, "rotated.pem")
	get := "GET / HTTP/1.0\r\n\r\n"
	a.sClientHTTP(t, "-tls1_3", "-sess_out", sess, get)
	if got, _ := b.sClientHTTP(t, "-tls1_3", "-sess_in", sess, get); got != "New" {
		t.Fatalf("before login, B: %s", got)
	}
	_, out := a.sClientHTTP(t, "-tls1_3", "-sess_out", sess, "POST /login HTTP/1.0\r\n\r\n")
	if !regexp.MustCompile(`"sessions_added":1`).MatchString(out) {
		t.Fatalf("login on A:\n%s", out)
	}
	if got, _ := b.sClientHTTP(t, "-tls1_3", "-sess_in", sess, get); got != "Reused" {
		t.Fatalf("after login on A, B: %s", got)
	}
	// The ticket B issues on a resumption inherits the approval, and joins
	// the fleet too.
	if got := b.sClientRotate(t, sess, rotated); got != "Reused" {
		t.Fatalf("B: %s", got)
	}
	rotatedAgain := filepath.Join(dir, "rotated-again.pem")
	if got := a.sClientRotate(t, rotated, rotatedAgain); got != "Reused" {
		t.Fatalf("a ticket B issued after login does not resume on A: %s", got)
	}
	_, out = b.sClientHTTP(t, "-tls1_3", "-sess_in", sess, "POST /logout HTTP/1.0\r\n\r\n")
	if !regexp.MustCompile(`"sessions_removed":[1-9]`).MatchString(out) {
		t.Fatalf("logout on B:\n%s", out)
	}
	// Every ticket of the login's family is gone from both servers, also
	// the one A issued from B's.
	for _, ticket := range []string{sess, rotated, rotatedAgain} {
		for name, s := range map[string]*exampleServer{"A": a, "B": b} {
			if got, _ := s.sClientHTTP(t, "-tls1_3", "-sess_in", ticket, get); got != "New" {
				t.Fatalf("after logout on B, %s on %s: %s", filepath.Base(ticket), name, got)
			}
		}
	}
}

// TestExampleFleetNeedsKeys: -redis without sealing keys refuses to start,
// saying how to make one.
func TestExampleFleetNeedsKeys(t *testing.T) {
	s := launchExample(t, []string{"TLSCACHE_SEAL_KEYS="}, "-addr", "127.0.0.1:0", "-admin", "", "-redis", "127.0.0.1:1")
	s.waitExit(t)
	if s.err == nil || !regexp.MustCompile(`seal-keys.*head -c 32 /dev/urandom \| base64`).MatchString(s.logs.String()) {
		t.Fatalf("exit %v, log:\n%s", s.err, s.logs)
	}
}

// sClientRotate resumes the session in file in with s_client, saves the
// ticket the server issues to file out, and returns "New" or "Reused".
func (s *exampleServer) sClientRotate(t *testing.T, in, out string) string {
	t.Helper()
	text := run(t, "GET / HTTP/1.0\r\n\r\n", requirePeer(t, "openssl"), "s_client",
		"-connect", s.addr, "-servername", "localhost", "-CAfile", s.caFile, "-verify_return_error",
		"-tls1_3", "-sess_in", in, "-sess_out", out, "-ign_eof")
	m := sessionLine.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no New/Reused line in s_client's output:\n%s", text)
	}
	return m[1]
}

// TestExampleFleetTopologies: the example server refuses, with an error
// that says what to give instead, a cluster node given as a standalone
// Redis, sentinels without a master name, and an unreachable Redis; it
// starts on a cluster (several -redis addresses) and on a Sentinel set
// (-redis-master, or $TLSCACHE_REDIS_MASTER), and its servers resume each
// other's sessions there.
func TestExampleFleetTopologies(t *testing.T) {
	cl := redistest.StartCluster(t)
	st := redistest.StartSentinel(t)
	key := fleet.GenerateKey().Secret()
	env := []string{"TLSCACHE_SEAL_KEYS=" + key, "TLSCACHE_REDIS_MASTER="}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"cluster node as standalone", nil, []string{"-redis", cl.Addrs()[0]}, `is a node of a Redis Cluster.*give two or more cluster nodes: -redis host:port,host:port`},
		{"sentinels without a master name", nil, []string{"-redis", strings.Join(st.Addrs(), ",")}, `is a Sentinel.*-redis-master NAME or \$TLSCACHE_REDIS_MASTER`},
		{"one sentinel without a master name", nil, []string{"-redis", st.Addrs()[0]}, `is a Sentinel.*-redis-master NAME`},
		{"unreachable", nil, []string{"-redis", "127.0.0.1:1"}, `Redis does not answer at 127.0.0.1:1`},
		{"unknown master", []string{"TLSCACHE_REDIS_MASTER=nosuch"}, []string{"-redis", strings.Join(st.Addrs(), ",")}, `no sentinel knows a master by that name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := launchExample(t, append(append([]string(nil), env...), tc.env...), append([]string{"-addr", "127.0.0.1:0", "-admin", ""}, tc.args...)...)
			s.waitExit(t)
			if s.err == nil || !regexp.MustCompile(tc.want).MatchString(s.logs.String()) {
				t.Fatalf("exit %v, want an error matching %q; log:\n%s", s.err, tc.want, s.logs)
			}
			t.Logf("%s", strings.TrimSpace(s.logs.String()))
		})
	}
	p := thePKI(t)
	certFile, keyFile := p.files(t, p.leaf(t, "localhost", "127.0.0.1"))
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"cluster", nil, []string{"-redis", strings.Join(cl.Addrs(), ",")}},
		{"sentinel flag", nil, []string{"-redis", strings.Join(st.Addrs(), ","), "-redis-master", st.MasterName}},
		{"sentinel environment", []string{"TLSCACHE_REDIS_MASTER=" + st.MasterName}, []string{"-redis", strings.Join(st.Addrs(), ",")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-redis-prefix", redistest.Prefix(t), "-cert", certFile, "-key", keyFile}, tc.args...)
			e := append(append([]string(nil), env...), tc.env...)
			a, b := startExampleEnv(t, e, args...), startExampleEnv(t, e, args...)
			sess := filepath.Join(t.TempDir(), "sess.pem")
			if got, _ := a.sClientHTTP(t, "-tls1_3", "-sess_out", sess, "GET / HTTP/1.0\r\n\r\n"); got != "New" {
				t.Fatalf("first connection to A: %s", got)
			}
			if got, _ := b.sClientHTTP(t, "-tls1_3", "-sess_in", sess, "GET / HTTP/1.0\r\n\r\n"); got != "Reused" {
				t.Fatalf("A's session on B: %s, want Reused\nA:\n%s\nB:\n%s", got, a.logs, b.logs)
			}
			if !regexp.MustCompile(`msg=fleet .*topology=`).MatchString(a.logs.String()) {
				t.Fatalf("A does not log its topology:\n%s", a.logs)
			}
		})
	}
}
