// Command h3-client connects to an HTTP/3 server several times, resuming
// and sending its request in 0-RTT when it can, and says for each
// connection whether it resumed and whether the server took its early
// data. With -same-ticket every connection offers the first ticket again,
// as a replay would: its early data is accepted once.
//
//	go run ./examples/h3-client -k -n 3 -same-ticket https://localhost:8443/
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
)

func main() {
	var (
		n          = flag.Int("n", 3, "connections to make, one after the other")
		sameTicket = flag.Bool("same-ticket", false, "offer the first connection's ticket on every later one")
		insecure   = flag.Bool("k", false, "do not verify the server's certificate (the example server's is self-signed)")
		caFile     = flag.String("ca", "", "PEM file of the CA (or self-signed certificate) to trust")
		method     = flag.String("X", "GET", "request method; only GET and HEAD go in 0-RTT")
	)
	flag.Parse()
	target := "https://localhost:8443/"
	if flag.NArg() > 0 {
		target = flag.Arg(0)
	}
	if err := run(target, *n, *sameTicket, *insecure, *caFile, *method); err != nil {
		fmt.Fprintln(os.Stderr, "h3-client:", err)
		os.Exit(1)
	}
}

func run(target string, n int, sameTicket, insecure bool, caFile, method string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	cache := adapter.NewClientCache(nil, nil)
	cfg := &tls.Config{ServerName: u.Hostname(), NextProtos: []string{http3.NextProtoH3}, ClientSessionCache: cache, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", caFile)
		}
	}
	var ticket []byte
	for i := 1; i <= n; i++ {
		if ticket != nil {
			if err := cache.Import(ticket); err != nil {
				return err
			}
		}
		prev, _ := cache.Export(u.Hostname())
		if err := connect(i, u, cfg, method, func() error {
			// Over QUIC the ticket follows the handshake: wait for it
			// before closing the connection.
			b, err := waitTicket(cache, u.Hostname(), prev)
			if sameTicket && ticket == nil {
				ticket = b
			}
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// connect makes one connection and one request, in 0-RTT if it can, and
// reports what happened.
func connect(i int, u *url.URL, cfg *tls.Config, method string, done func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := u.Host
	if u.Port() == "" {
		addr += ":443"
	}
	conn, err := quic.DialAddrEarly(ctx, addr, cfg, nil)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	sent := method
	switch method {
	case http.MethodGet:
		sent = http3.MethodGet0RTT
	case http.MethodHead:
		sent = http3.MethodHead0RTT
	}
	note := ""
	resp, err := request(ctx, (&http3.Transport{}).NewClientConn(conn), sent, u)
	if errors.Is(err, quic.Err0RTTRejected) {
		// The server refused the early data: the request was not read.
		// Send it again on a connection dialed without early data (it
		// still resumes).
		note = " (0-RTT refused: resent on a new connection, after its handshake)"
		conn.CloseWithError(0, "")
		if conn, err = quic.DialAddr(ctx, addr, cfg, nil); err != nil {
			return err
		}
		defer conn.CloseWithError(0, "")
		resp, err = request(ctx, (&http3.Transport{}).NewClientConn(conn), method, u)
	} else if err == nil && resp.StatusCode == http.StatusTooEarly {
		note = " (425 Too Early, resent after the handshake)"
		resp.Body.Close()
		<-conn.HandshakeComplete()
		resp, err = request(ctx, (&http3.Transport{}).NewClientConn(conn), method, u)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	st := conn.ConnectionState()
	fmt.Printf("connection %d: %s, resumed %v, 0-RTT %v%s: %s\n", i, resp.Status, st.TLS.DidResume, st.Used0RTT, note, summary(body))
	return done()
}

func request(ctx context.Context, cc *http3.ClientConn, method string, u *url.URL) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return cc.RoundTrip(req)
}

// summary picks from the example server's GET / answer what it saw of the
// connection, or returns the body as is.
func summary(body []byte) string {
	var info struct {
		Resumed     bool `json:"resumed"`
		EarlyData   bool `json:"early_data"`
		ResumedFrom *struct {
			ID string `json:"id"`
		} `json:"resumed_from"`
	}
	if json.Unmarshal(body, &info) != nil {
		return string(body)
	}
	from := "-"
	if info.ResumedFrom != nil {
		from = info.ResumedFrom.ID
	}
	return fmt.Sprintf("server saw resumed %v, early data %v, resumed from %s", info.Resumed, info.EarlyData, from)
}

// waitTicket waits for a ticket from the server other than prev, and
// exports it.
func waitTicket(cache *adapter.ClientCache, key string, prev []byte) ([]byte, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := cache.Export(key)
		if err == nil && !bytes.Equal(b, prev) {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no ticket from the server: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
