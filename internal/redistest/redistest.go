// Package redistest gives tests a real Redis: the one named by the
// TLSCACHE_REDIS environment variable (host:port), or a redis-server
// started for the test. Without either the test is skipped, unless
// TLSCACHE_REQUIRE_PEERS=1 (as in CI), where it fails.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	Addr   string
	t      testing.TB
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}   // closed when cmd has exited
	args   func() []string // the command line, for Restart
}

// Start starts a redis-server on a free loopback port, stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server is not installed")
	}
	return start(t, false, nil)
}

// start starts redis-server on a free loopback port (with bus, one whose
// cluster bus port is free too) with extra arguments (a nil args means
// none), stopped when t ends.
func start(t testing.TB, bus bool, args func(s *Server) []string) *Server {
	t.Helper()
	return launch(t, bus, func(s *Server) []string {
		_, port, _ := net.SplitHostPort(s.Addr)
		a := []string{"redis-server", "--bind", "127.0.0.1", "--port", port,
			"--save", "", "--appendonly", "no", "--dir", s.dir,
			"--logfile", filepath.Join(s.dir, "redis-"+strconv.Itoa(os.Getpid())+".log")}
		if args != nil {
			a = append(a, args(s)...)
		}
		return a
	})
}

// launch starts the command line that command returns for a Server on a
// free loopback port, writing its log into s.dir, and waits until it
// answers. The port is free when chosen, but another process (an outgoing
// connection's local port) may take it before the server binds it; then
// the server exits at once, and launch tries another port.
func launch(t testing.TB, bus bool, command func(s *Server) []string) *Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s := &Server{Addr: freeAddr(t, bus), t: t, dir: t.TempDir()}
		s.args = func() []string { return command(s) }
		err := s.run()
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("%v; trying another port", err)
	}
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

var errPortTaken = errors.New("its port was taken")

// Restart starts the server again after Stop (with no data: persistence is
// off), and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.run(); err != nil {
		s.t.Fatal(err)
	}
}

// run starts the server and waits until it answers; an error if it exits
// first or does not answer within 10 s.
func (s *Server) run() error {
	args := s.args()
	s.cmd = exec.Command(args[0], args[1:]...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", args[0], err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(s.cmd)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-exited:
			s.cmd = nil
			log := s.logs()
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("%s on %s exited: %w:\n%s", args[0], s.Addr, errPortTaken, log)
			}
			return fmt.Errorf("%s on %s exited at start:\n%s", args[0], s.Addr, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s did not answer within 10s:\n%s", args[0], s.Addr, s.logs())
		}
		time.Sleep(5 * time.Millisecond) // polling a starting process
	}
	return nil
}

// logs returns the end of the logs in the server's directory.
func (s *Server) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		b.Write(data)
	}
	return b.String()
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
	<-s.exited
	s.cmd = nil
}
