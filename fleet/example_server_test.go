package fleet_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/internal/testcert"
	"github.com/tlscache/tlscache/redisstore"
	"github.com/tlscache/tlscache/tlscache"
)

// A fleet server on Redis, with login-only resumption: the whole setup.
// (Not run here: it needs a Redis and certificate files; the example below
// runs the same on an in-memory store.)
func ExampleNewServer_redis() {
	rdb, err := redisstore.Open(context.Background(), &redis.UniversalOptions{Addrs: strings.Split(os.Getenv("REDIS_ADDRS"), ",")})
	if err != nil {
		log.Fatal(err)
	}
	store, _ := redisstore.New(rdb, nil)
	keys, err := fleet.ParseKeys(os.Getenv("TLSCACHE_SEAL_KEYS")) // the same on every server
	if err != nil {
		log.Fatal(err)
	}
	srv, err := fleet.NewServer(store, &fleet.ServerOptions{Keys: keys, ApprovedOnly: true, Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	http.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Resumes on every server; an error says on this one only.
		if _, err := srv.Approve(adapter.ConnSessionsFrom(r.Context())); err != nil {
			log.Print(err)
		}
	})
	http.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		// Returns once every server applied it, or says it could not tell.
		if _, err := srv.RevokeWait(r.Context(), adapter.Revocation{Conn: adapter.ConnSessionsFrom(r.Context())}); err != nil {
			log.Print(err)
		}
	})
	log.Fatal(srv.ListenAndServeTLS(&http.Server{Addr: ":8443"}, "cert.pem", "key.pem"))
}

// Two fleet servers on one store, with login-only resumption: a login on
// A makes the client's session resume on B, and a logout on B ends it on
// A. In production the store is a redisstore.Store (see the example
// above) and each server runs in its own process.
func ExampleNewServer() {
	store := tlscache.NewMemoryStore(0, nil)
	keys := []fleet.Key{fleet.GenerateKey()}
	cert, roots := testcert.SelfSigned("example.com")

	serve := func() (url string) {
		srv, err := fleet.NewServer(store, &fleet.ServerOptions{Keys: keys, ApprovedOnly: true})
		if err != nil {
			panic(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			srv.Approve(adapter.ConnSessionsFrom(r.Context()))
		})
		mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
			// On Redis, RevokeWait waits until every server applied it; a
			// memory store cannot confirm that, so here it only revokes.
			srv.RevokeWait(r.Context(), adapter.Revocation{Conn: adapter.ConnSessionsFrom(r.Context())})
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		hs := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
		go srv.ServeTLS(hs, ln, "", "")
		<-srv.Ready() // until then, it resumes nothing
		return "https://" + ln.Addr().String()
	}
	a, b := serve(), serve()

	// A browser: it keeps its sessions, and here opens a new connection
	// for every request.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "example.com", ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}}}
	do := func(method, server, url string) {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Printf("%-4s %-7s on %s: %s\n", method, "/"+url[len(a)+1:], server, map[bool]string{false: "New", true: "Resumed"}[resp.TLS.DidResume])
	}
	do("GET", "A", a+"/")
	do("POST", "A", a+"/login")
	do("GET", "B", b+"/")
	do("GET", "A", a+"/")
	do("POST", "B", b+"/logout")
	do("GET", "A", a+"/")
	do("GET", "B", b+"/")
	// Output:
	// GET  /       on A: New
	// POST /login  on A: New
	// GET  /       on B: Resumed
	// GET  /       on A: Resumed
	// POST /logout on B: Resumed
	// GET  /       on A: New
	// GET  /       on B: New
}
