package integration_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// requirePeer returns the path of a foreign TLS peer's binary. Without it the
// test skips, unless TLSCACHE_REQUIRE_PEERS is set (as .ci/run does): then a
// missing peer fails the run instead of hiding a suite.
func requirePeer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("TLSCACHE_REQUIRE_PEERS") != "" {
			t.Fatalf("%s not found and TLSCACHE_REQUIRE_PEERS is set: %v", name, err)
		}
		t.Skipf("%s not found; install it or this suite does not run", name)
	}
	return path
}

var sessionLine = regexp.MustCompile(`(?m)^(New|Reused), (TLSv1\.[23])`)

// sClient runs openssl s_client once against addr, with -sess_out or
// -sess_in, and returns "New" or "Reused" and the protocol it printed.
func sClient(t *testing.T, openssl, addr, flag, sessFile, protoFlag string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client",
		"-connect", addr, "-servername", "localhost",
		"-CAfile", thePKI(t).caFile(), "-verify_return_error",
		protoFlag, flag, sessFile, "-ign_eof")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client %s %s: %v\n%s", flag, protoFlag, err, out)
	}
	m := sessionLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no New/Reused line in s_client output:\n%s", out)
	}
	if !strings.Contains(string(out), "resumed=") {
		t.Fatalf("s_client did not read the server's line:\n%s", out)
	}
	return m[1], m[2]
}

// openssl s_client -sess_out / -sess_in against a Go server with the adapter.
func TestOpenSSLClientResumes(t *testing.T) {
	openssl := requirePeer(t, "openssl")
	for _, tt := range []struct {
		name, flag, proto string
		version           uint16
	}{
		{"TLS12", "-tls1_2", "TLSv1.2", tls.VersionTLS12},
		{"TLS13", "-tls1_3", "TLSv1.3", tls.VersionTLS13},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := thePKI(t)
			cache := tlscache.New(nil)
			s := startServer(t, serverConfig(tt.version, p.leaf(t, "localhost")), cache, nil)
			sess := filepath.Join(t.TempDir(), "session.pem")

			if got, proto := sClient(t, openssl, s.addr, "-sess_out", sess, tt.flag); got != "New" || proto != tt.proto {
				t.Fatalf("first connection: %s, %s; want New, %s", got, proto, tt.proto)
			}
			if got, _ := sClient(t, openssl, s.addr, "-sess_in", sess, tt.flag); got != "Reused" {
				t.Fatalf("-sess_in: %s, want Reused", got)
			}
			// The server removes the session the first connection got.
			if !s.srv.Revoke(s.onlyIssued(t, 0).ID) {
				t.Fatal("Revoke = false")
			}
			if got, _ := sClient(t, openssl, s.addr, "-sess_in", sess, tt.flag); got != "New" {
				t.Fatalf("-sess_in after the server removed the session: %s, want New", got)
			}
			if st := cache.Stats(); st.Hits != 1 || st.AcceptGood != 3 {
				t.Errorf("stats = %+v, want Hits 1, AcceptGood 3", st)
			}
		})
	}
}

// A Go client with the adapter's ClientCache against openssl s_server -www.
func TestGoClientAgainstOpenSSLServer(t *testing.T) {
	openssl := requirePeer(t, "openssl")
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			p := thePKI(t)
			certFile, keyFile := p.files(t, p.leaf(t, "localhost"))
			addr := startSServer(t, openssl, certFile, keyFile)
			cc := adapter.NewClientCache(nil, nil)
			client := clientConfig(t, v.v, "localhost", nil)
			cc.Install(client)
			if getWWW(t, addr, client) {
				t.Fatal("first connection resumed")
			}
			if !getWWW(t, addr, client) {
				t.Fatal("second connection did not resume")
			}
			if st := cc.Cache().Stats(); st.Hits != 1 || st.ConnectGood != 2 {
				t.Errorf("client stats = %+v, want Hits 1, ConnectGood 2", st)
			}
		})
	}
}

// startSServer runs openssl s_server -www on a free loopback port.
func startSServer(t *testing.T, openssl, certFile, keyFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(openssl, "s_server", "-accept", "127.0.0.1:"+port,
		"-cert", certFile, "-key", keyFile, "-www", "-quiet")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl s_server did not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getWWW fetches s_server's status page and reports whether the handshake
// resumed; reading the page also reads any TLS 1.3 ticket.
func getWWW(t *testing.T, addr string, cfg *tls.Config) bool {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("s_server answered %q, %v", status, err)
	}
	for {
		if _, err := r.ReadString('\n'); err != nil {
			break
		}
	}
	return c.ConnectionState().DidResume
}
