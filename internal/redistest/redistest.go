// Package redistest gives tests a real Redis: the one named by the
// TLSCACHE_REDIS environment variable (host:port), or a redis-server
// started for the test. Without either the test is skipped, unless
// TLSCACHE_REQUIRE_PEERS=1 (as in CI), where it fails.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("TLSCACHE_REQUIRE_PEERS") == "1" {
		t.Fatalf("Redis required (TLSCACHE_REQUIRE_PEERS=1) but %s", why)
	}
	t.Skipf("no Redis: %s (set TLSCACHE_REDIS=host:port or install redis-server)", why)
}

// Addr returns the address of a Redis for t: TLSCACHE_REDIS if set, else a
// redis-server started for t and stopped when it ends.
func Addr(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv("TLSCACHE_REDIS"); addr != "" {
		c := Client(t, addr)
		if err := c.Ping(context.Background()).Err(); err != nil {
			unavailable(t, fmt.Sprintf("TLSCACHE_REDIS=%s does not answer: %v", addr, err))
		}
		return addr
	}
	return Start(t).Addr
}

// Client returns a client for addr, as the stores need it
// (ContextTimeoutEnabled), closed when t ends.
func Client(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a key prefix no other test uses, so tests can share one
// Redis.
func Prefix(t testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "tlscache-test:" + hex.EncodeToString(b) + ":"
}

// A Server is a redis-server process of its own, which a test may stop and
// start again on the same port (fault injection).
type Server struct {
	Addr string
	t    testing.TB
	dir  string
	cmd  *exec.Cmd
	args func() []string // the command line, for Restart
}

// Start starts a redis-server on a free loopback port, stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server is not installed")
	}
	return start(t, freeAddr(t, false), nil)
}

// start starts redis-server on addr with extra arguments (a nil args
// means none), stopped when t ends.
func start(t testing.TB, addr string, args func(s *Server) []string) *Server {
	t.Helper()
	s := &Server{Addr: addr, t: t, dir: t.TempDir()}
	_, port, _ := net.SplitHostPort(addr)
	s.args = func() []string {
		a := []string{"redis-server", "--bind", "127.0.0.1", "--port", port,
			"--save", "", "--appendonly", "no", "--dir", s.dir,
			"--logfile", filepath.Join(s.dir, "redis-"+strconv.Itoa(os.Getpid())+".log")}
		if args != nil {
			a = append(a, args(s)...)
		}
		return a
	}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// freeAddr returns a loopback address free now; with bus, one whose port
// plus 10000 (a cluster node's bus port) is a port and free too.
func freeAddr(t testing.TB, bus bool) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().(*net.TCPAddr)
		if !bus {
			l.Close()
			return addr.String()
		}
		if addr.Port+10000 < 65536 {
			if l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", addr.Port+10000)); err == nil {
				l2.Close()
				l.Close()
				return addr.String()
			}
		}
		l.Close()
	}
	t.Fatal("no free loopback port pair for a cluster node")
	return ""
}

// Restart starts the server again after Stop (with no data: persistence is
// off), and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	args := s.args()
	s.cmd = exec.Command(args[0], args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", args[0], err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s on %s did not answer within 10s", args[0], s.Addr)
		}
		time.Sleep(5 * time.Millisecond) // polling a starting process
	}
}

// Pause stops the server process (SIGSTOP) without closing its sockets:
// connections hang, as with an overloaded or partitioned Redis, until
// Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signalling redis-server: %v", err)
	}
}

// Stop kills the server and waits for it to exit; connections to it fail
// from then on.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server dies too
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}
