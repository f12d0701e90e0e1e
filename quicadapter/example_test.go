package quicadapter_test

import (
	"crypto/tls"
	"log"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/quicadapter"
	"github.com/tlscache/tlscache/tlscache"
)

// An HTTP/3 server whose tickets resume under the adapter's control, with
// early data accepted once per ticket and unsafe requests in early data
// answered 425 Too Early.
func ExampleNewServer() {
	var tlsConfig *tls.Config // certificates
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Over QUIC the connection's ticket comes after the handshake:
		// Approve approves it when it is issued.
		adapter.ConnSessionsFrom(r.Context()).Approve(func(*tlscache.Session) {})
	})
	srv := adapter.NewServer(tlscache.New(nil), nil) // adapter.EarlyDataOnce
	h3 := &http3.Server{Handler: adapter.TooEarly(mux, nil), TLSConfig: tlsConfig}
	qs, err := quicadapter.NewServer(h3, srv)
	if err != nil {
		log.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{Port: 443})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(qs.Serve(&quic.Transport{Conn: udp}))
}

// A client that sends GET requests in 0-RTT and resends those whose early
// data the server refused.
func ExampleRoundTripper() {
	rt := &quicadapter.RoundTripper{TLSClientConfig: &tls.Config{ClientSessionCache: adapter.NewClientCache(nil, nil)}}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	resp, err := client.Get("https://example.com/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	log.Printf("%s, %d requests resent", resp.Status, rt.Resent())
}
