package adapter

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlscache/tlscache/internal/testclock"
	"github.com/tlscache/tlscache/tlscache"
)

// TestMain runs clientFileChild instead of the tests when
// TestClientFileSurvivesRestart starts this binary as its child.
func TestMain(m *testing.M) {
	if os.Getenv("TLSCACHE_CLIENT_FILE") != "" {
		if err := clientFileChild(); err != nil {
			fmt.Println("child:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// clientFileChild connects once with a ClientCache opened on the file,
// prints whether it resumed, and then kills itself, as a crash would,
// without saving.
func clientFileChild() error {
	der, err := os.ReadFile(os.Getenv("TLSCACHE_CLIENT_CA"))
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	version := tls.VersionTLS13
	if os.Getenv("TLSCACHE_CLIENT_TLS12") == "1" {
		version = tls.VersionTLS12
	}
	cc, err := OpenClientCache(os.Getenv("TLSCACHE_CLIENT_FILE"), nil, nil)
	if err != nil {
		return err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "example.com", MaxVersion: uint16(version)}
	cc.Install(cfg)
	c, err := tls.Dial("tcp", os.Getenv("TLSCACHE_CLIENT_ADDR"), cfg)
	if err != nil {
		return err
	}
	if _, err := c.Read(make([]byte, 1)); err != nil { // and the TLS 1.3 ticket before it
		return err
	}
	fmt.Printf("resumed=%v\n", c.ConnectionState().DidResume)
	os.Stdout.Sync()
	return syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// A client process that restarts, after a crash, resumes from its file.
func TestClientFileSurvivesRestart(t *testing.T) {
	for _, v := range []struct {
		name  string
		tls12 string
	}{{"TLS13", "0"}, {"TLS12", "1"}} {
		t.Run(v.name, func(t *testing.T) {
			server, _ := testConfigs(t, 0)
			if err := NewServer(tlscache.New(nil), nil).Install(server); err != nil {
				t.Fatal(err)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						c.Write([]byte{1})
						io.Copy(io.Discard, c)
					}()
				}
			}()

			dir := t.TempDir()
			ca := filepath.Join(dir, "ca.der")
			if err := os.WriteFile(ca, server.Certificates[0].Certificate[0], 0o600); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "sessions")
			run := func() string {
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), "TLSCACHE_CLIENT_FILE="+file, "TLSCACHE_CLIENT_CA="+ca,
					"TLSCACHE_CLIENT_ADDR="+ln.Addr().String(), "TLSCACHE_CLIENT_TLS12="+v.tls12)
				out, err := cmd.Output()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("child: %v\n%s", err, out)
				}
				for _, line := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(line, "resumed=") {
						return line
					}
				}
				t.Fatalf("child printed no result:\n%s", out)
				return ""
			}
			if got := run(); got != "resumed=false" {
				t.Fatalf("first process: %s", got)
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatalf("no session file after the first process: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("session file mode %v, want 0600", fi.Mode().Perm())
			}
			if got := run(); got != "resumed=true" {
				t.Fatalf("restarted process: %s", got)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("directory holds %d files, want the CA and the session file (no temporary files left)", len(entries))
			}
		})
	}
}

// A file that is not a session export is an error, and is left as it is.
func TestClientFileInvalid(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sessions")
	junk := []byte("not sessions")
	if err := os.WriteFile(file, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenClientCache(file, nil, nil); !errors.Is(err, ErrInvalidExport) {
		t.Fatalf("OpenClientCache on junk: %v, want ErrInvalidExport", err)
	}
	if b, _ := os.ReadFile(file); string(b) != string(junk) {
		t.Errorf("the file changed to %q", b)
	}
}

// A path that cannot be written (its directory is a file) is an error at
// open, not sessions lost in silence; a new path is written at open.
func TestClientFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenClientCache(filepath.Join(notDir, "sessions"), nil, nil); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("OpenClientCache under a file: %v, want ENOTDIR", err)
	}
	file := filepath.Join(dir, "sessions")
	if _, err := OpenClientCache(file, nil, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file after open: %v, %v; want mode 0600", fi, err)
	}
	if _, err := OpenClientCache(file, nil, nil); err != nil {
		t.Fatalf("the file written at open does not load: %v", err)
	}
}

// Sessions that expired while saved are dropped at load; Save writes what
// is cached; a missing file is an empty cache.
func TestClientFileExpiry(t *testing.T) {
	server, client := testConfigs(t, tls.VersionTLS13)
	if err := NewServer(tlscache.New(nil), nil).Install(server); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sessions")
	clock := testclock.New(time.Now())
	open := func() *ClientCache {
		t.Helper()
		cc, err := OpenClientCache(file, tlscache.New(&tlscache.Options{Mode: tlscache.Client, Timeout: time.Hour, Now: clock.Now}), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	cc := open()
	if cc.Cache().Len() != 0 {
		t.Fatalf("a missing file loaded %d sessions", cc.Cache().Len())
	}
	cc.Install(client)
	pipeHandshake(t, server, client)
	if err := cc.Save(); err != nil {
		t.Fatal(err)
	}
	if n := open().Cache().Len(); n != 1 {
		t.Fatalf("reopened: %d sessions, want 1", n)
	}
	clock.Advance(2 * time.Hour)
	if n := open().Cache().Len(); n != 0 {
		t.Fatalf("reopened after expiry: %d sessions, want 0", n)
	}
}
