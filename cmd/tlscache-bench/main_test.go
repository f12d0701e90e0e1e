package main

import (
	"crypto/tls"
	"os/exec"
	"testing"
	"time"
)

// Every handshake kind works and resumes as its rows expect, so that the
// benchmark measures what its rows say. One handshake each: no timing.
func TestHandshakeKinds(t *testing.T) {
	benchCert, benchPool = newCert()
	t.Cleanup(func() {
		for _, f := range atExit { // the Redis rows' keys
			f()
		}
		atExit = nil
	})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, k := range handshakeKinds() {
			srv, cli, skip := k.setup(v)
			if skip != "" {
				t.Logf("%s: %s", k.name, skip)
				continue
			}
			for i := range 3 {
				resumed, err := handshake(srv, cli)
				if err != nil {
					t.Fatalf("%x %s #%d: %v", v, k.name, i, err)
				}
				if want := k.resume && i > 0; resumed != want {
					t.Errorf("%x %s #%d: resumed=%v, want %v", v, k.name, i, resumed, want)
				}
			}
		}
	}
	if c := capture(); c.client == nil || c.server == nil {
		t.Fatal("capture found no sessions")
	}
}

// The example server's -procs row: it starts, tells its address, and its
// load clients' GETs resume, in both TLS versions. One short round each.
func TestProcsExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example server")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the example server")
	}
	dir := t.TempDir()
	bin, err := buildExample(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := writeCertFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		p, err := startExampleProc("example", bin, v, 100, certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		r := loadRound(p, v, 2, 300*time.Millisecond)
		p.stop()
		if r.resumed == 0 || r.hsPerSec == 0 {
			t.Errorf("%x: resumed %.2f of %.0f handshakes/s, want some resumed", v, r.resumed, r.hsPerSec)
		}
	}
}
