package main

// The example server as a -procs row: examples/https-server, a real HTTPS
// server, started with -addr 127.0.0.1:0 -admin "" -size N and the bench's
// certificate (-cert/-key), its address read from its "msg=serving" log
// line. Its load clients send a GET / with Connection: close and read the
// answer to the end. It is not filled before the rounds (its cache fills as
// the load issues sessions), and it answers no stats: its GC and heap
// columns are "-".

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// exampleRequest is what the example server's load clients send.
const exampleRequest = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

// buildExample builds examples/https-server into dir and returns its path.
func buildExample(dir string) (string, error) {
	bin := filepath.Join(dir, "https-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/tlscache/tlscache/examples/https-server")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("tlscache-bench: building the example server: %w", err)
	}
	return bin, nil
}

// writeCertFiles writes the bench's certificate and key as PEM files in dir.
func writeCertFiles(dir string) (certFile, keyFile string, err error) {
	cert, _ := newCert()
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// startExampleProc starts the example server bin with a cache of size
// sessions, for TLS version (-tls12 for 1.2).
func startExampleProc(name, bin string, version uint16, size int, certFile, keyFile string) (*serverProc, error) {
	args := []string{"-addr", "127.0.0.1:0", "-admin", "", "-size", strconv.Itoa(size), "-cert", certFile, "-key", keyFile}
	if version == tls.VersionTLS12 {
		args = append(args, "-tls12")
	}
	cmd := exec.Command(bin, args...)
	errs, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{name: name, kind: "example", cmd: cmd, drained: make(chan struct{})}
	log := bufio.NewScanner(errs)
	var said []string
	for p.addr == "" && log.Scan() {
		line := log.Text()
		said = append(said, line)
		if !strings.Contains(line, "msg=serving") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if a, ok := strings.CutPrefix(f, "addr="); ok {
				p.addr = a
			}
		}
	}
	// The rest of the log (a line per connection) is read and dropped.
	go func() { io.Copy(io.Discard, errs); close(p.drained) }()
	if p.addr == "" {
		p.stop()
		return nil, fmt.Errorf("tlscache-bench: server %s gave no address; it said:\n%s", name, strings.Join(said, "\n"))
	}
	return p, nil
}

// stopExample interrupts the example server (it shuts down gracefully) and
// waits for it, killing it after 10s.
func (p *serverProc) stopExample() {
	p.cmd.Process.Signal(os.Interrupt)
	t := time.AfterFunc(10*time.Second, func() { p.cmd.Process.Kill() })
	defer t.Stop()
	<-p.drained
	p.cmd.Wait()
}
