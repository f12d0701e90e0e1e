package redistest

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A server whose port another process took before it bound it exits at
// once; launch says so and starts it on another port.
func TestLaunchRetriesTakenPort(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server is not installed")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, takenPort, _ := net.SplitHostPort(taken.Addr().String())
	attempts := 0
	s := launch(t, false, func(s *Server) []string {
		attempts++
		port := takenPort // the first attempt finds its port taken
		if attempts > 1 {
			_, port, _ = net.SplitHostPort(s.Addr)
		}
		return []string{"redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--dir", s.dir,
			"--logfile", filepath.Join(s.dir, "redis-"+strconv.Itoa(attempts)+".log")}
	})
	if attempts != 2 {
		t.Fatalf("%d attempts, want 2 (the first on a taken port)", attempts)
	}
	if err := Client(t, s.Addr).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the server started on the second attempt does not answer: %v", err)
	}
	s.Stop()
	if err := Client(t, s.Addr).Ping(context.Background()).Err(); err == nil {
		t.Fatal("the server still answers after Stop")
	}
}
