package main

import (
	"crypto/tls"
	"testing"
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
