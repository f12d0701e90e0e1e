package adapter_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// A server whose sessions live in a tlscache.Cache, and a client whose
// sessions live in another.
func ExampleServer_Install() {
	serverConfig, clientConfig := exampleConfigs() // certificates of your own

	serverCache := tlscache.New(nil) // mode Server, 20480 sessions, 7200 s
	if err := adapter.NewServer(serverCache, nil).Install(serverConfig); err != nil {
		panic(err)
	}
	adapter.NewClientCache(nil, nil).Install(clientConfig)

	for range 2 {
		fmt.Println("resumed:", connect(serverConfig, clientConfig))
	}
	st := serverCache.Stats()
	fmt.Printf("accept=%d accept_good=%d hits=%d misses=%d\n", st.Accept, st.AcceptGood, st.Hits, st.Misses)
	// Output:
	// resumed: false
	// resumed: true
	// accept=2 accept_good=2 hits=1 misses=0
}

// Controlled resumption from HTTP: with NoInternalStore nothing resumes until
// a handler approves its connection's sessions, here after a login.
func ExampleServer_Approve() {
	cache := tlscache.New(&tlscache.Options{Mode: tlscache.Server | tlscache.NoInternalStore})
	// Sessions issued on connections resumed from an approved one are
	// approved too: clients offer their newest ticket.
	tlsServer := adapter.NewServer(cache, &adapter.ServerOptions{InheritApproval: true})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// ... check the credentials, then approve the connection's sessions:
		tlsServer.Approve(adapter.ConnSessionsFrom(r.Context()))
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		// The connection's sessions and their lineages end, and so does
		// any ticket it issues later (HTTP/3).
		tlsServer.RevokeWait(r.Context(), adapter.Revocation{Conn: adapter.ConnSessionsFrom(r.Context())})
	})
	srv := &http.Server{Addr: ":8443", Handler: mux}
	log.Fatal(tlsServer.ListenAndServeTLS(srv, "cert.pem", "key.pem"))
}

// A client persists its sessions across restarts, as openssl s_client
// -sess_out and -sess_in do.
func ExampleClientCache_ExportAll() {
	serverConfig, clientConfig := exampleConfigs()
	if err := adapter.NewServer(tlscache.New(nil), nil).Install(serverConfig); err != nil {
		panic(err)
	}

	before := adapter.NewClientCache(nil, nil)
	clientConfig.ClientSessionCache = before
	connect(serverConfig, clientConfig)
	saved, err := before.ExportAll() // write it to a file: it holds secrets
	if err != nil {
		panic(err)
	}

	after := adapter.NewClientCache(nil, nil) // after a restart
	n, err := after.ImportAll(saved)
	fmt.Println("imported:", n, err)
	clientConfig.ClientSessionCache = after
	fmt.Println("resumed:", connect(serverConfig, clientConfig))
	// Output:
	// imported: 1 <nil>
	// resumed: true
}

func loadCertificates() []tls.Certificate {
	server, _ := exampleConfigs()
	return server.Certificates
}

// connect runs one connection over an in-memory pipe and reports whether it
// resumed.
func connect(server, client *tls.Config) bool {
	sc, cc := net.Pipe()
	go func() {
		s := tls.Server(sc, server)
		if s.Handshake() == nil {
			s.Write([]byte("hello")) // a TLS 1.3 client reads its ticket with this
		}
		io.Copy(io.Discard, s)
		s.Close()
	}()
	c := tls.Client(cc, client)
	defer c.Close()
	if _, err := c.Read(make([]byte, 5)); err != nil {
		panic(err)
	}
	return c.ConnectionState().DidResume
}
