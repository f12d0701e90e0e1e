package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

type app struct {
	cache  *tlscache.Cache
	srv    *adapter.Server
	policy string
	log    *slog.Logger
	tier   *fleet.Tier // nil without -redis
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /reconnect", reconnect)
	// A login or logout in early data could be a replay: 425 Too Early,
	// and the client resends it after the handshake (RFC 8470).
	return adapter.TooEarly(mux, nil)
}

// connInfo is what GET / shows of the request's connection.
type connInfo struct {
	Version     string         `json:"tls_version"`
	CipherSuite string         `json:"cipher_suite"`
	Protocol    string         `json:"alpn,omitempty"`
	ServerName  string         `json:"server_name,omitempty"`
	Resumed     bool           `json:"resumed"`
	EarlyData   bool           `json:"early_data"` // the request may have come in 0-RTT
	ResumedFrom *sessionInfo   `json:"resumed_from,omitempty"`
	Issued      []sessionInfo  `json:"issued"`
	Policy      string         `json:"policy"`
	LoggedIn    bool           `json:"logged_in"` // -policy login: a session of this connection is approved
	Mode        string         `json:"mode"`
	Stats       tlscache.Stats `json:"stats"`
}

// sessionInfo is a session's metadata, never its secret state.
type sessionInfo struct {
	ID      string    `json:"id"` // a prefix: enough to tell sessions apart
	Context string    `json:"context"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Cached  bool      `json:"cached"`
}

func (a *app) describe(s *tlscache.Session) sessionInfo {
	return sessionInfo{
		ID:      shortID(s.ID),
		Context: shortID(s.IDContext),
		Created: s.Created(),
		Expires: s.Expires(),
		Cached:  a.cache.Peek(s.ID) == s,
	}
}

func shortID(b []byte) string {
	if len(b) > 8 {
		b = b[:8]
	}
	return hex.EncodeToString(b)
}

func (a *app) info(r *http.Request) connInfo {
	cs := r.TLS
	info := connInfo{
		Version:     tls.VersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite),
		Protocol:    cs.NegotiatedProtocol,
		ServerName:  cs.ServerName,
		Resumed:     cs.DidResume,
		EarlyData:   adapter.InEarlyData(r),
		Issued:      []sessionInfo{},
		Policy:      a.policy,
		Mode:        a.cache.Mode().String(),
		Stats:       a.cache.Stats(),
	}
	if conn := adapter.ConnSessionsFrom(r.Context()); conn != nil {
		if s := conn.Resumed(); s != nil {
			d := a.describe(s)
			info.ResumedFrom = &d
		}
		for _, s := range conn.Issued() {
			info.Issued = append(info.Issued, a.describe(s))
		}
	}
	if a.policy == "login" {
		info.LoggedIn = info.ResumedFrom != nil && info.ResumedFrom.Cached
		for _, s := range info.Issued {
			info.LoggedIn = info.LoggedIn || s.Cached
		}
	}
	return info
}

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	info := a.info(r)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(info)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, info)
}

// login approves the connection's sessions: under -policy login, the next
// connections resume from them.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if a.policy != "login" {
		http.Error(w, "login applies to -policy login only", http.StatusConflict)
		return
	}
	// With -redis, the sessions resume on every server of the fleet. Over
	// HTTP/3 the connection's ticket is issued after the handshake,
	// possibly after this handler ran: Approve approves it then.
	added, err := a.srv.Approve(adapter.ConnSessionsFrom(r.Context()))
	if err != nil {
		a.log.Warn("login: the sessions resume on this server only", "err", err)
	}
	a.log.Info("login", "sessions_added", added)
	reply(w, r, map[string]int{"sessions_added": added})
}

// logout revokes the connection's sessions and their lineages (the
// sessions approved by inheritance), and waits until every server of the
// fleet has applied the revocation: the next connection, to any server, is
// a full handshake.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	removed, err := a.srv.RevokeWait(ctx, adapter.Revocation{Conn: adapter.ConnSessionsFrom(r.Context())})
	if err != nil {
		a.log.Warn("logout: revocation not confirmed by the whole fleet (retried in the background)", "err", err)
	}
	a.log.Info("logout", "sessions_removed", removed)
	reply(w, r, map[string]int{"sessions_removed": removed})
}

// reconnect sends the browser back to the page on a new connection, so that
// a person sees it resume: "Connection: close" ends an HTTP/1.1 connection
// after the response, and makes Go's HTTP/2 server send GOAWAY.
func reconnect(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// reply answers a form of the page with the page again, on the same
// connection, and any other client with v as JSON.
func reply(w http.ResponseWriter, r *http.Request, v any) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	writeJSON(w, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// logConnections logs one line per connection once its handshake is done:
// TLS version, resumed or not, and the short ID of the session it resumed
// from or was issued. ConfigureHTTPServer has set hs.ConnContext; this wraps
// it to remember each connection's sessions until the connection closes.
func (a *app) logConnections(hs *http.Server) {
	var conns sync.Map // net.Conn -> *connLog
	next := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		ctx = next(ctx, c)
		conns.Store(c, &connLog{sessions: adapter.ConnSessionsFrom(ctx)})
		return ctx
	}
	hs.ConnState = func(c net.Conn, state http.ConnState) {
		v, ok := conns.Load(c)
		if !ok {
			return
		}
		cl := v.(*connLog)
		switch state {
		case http.StateActive:
			cl.log(a.log, c)
		case http.StateClosed, http.StateHijacked:
			cl.log(a.log, c)
			conns.Delete(c)
		}
	}
}

type connLog struct {
	once     sync.Once
	sessions *adapter.ConnSessions
}

func (cl *connLog) log(log *slog.Logger, c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return
	}
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete {
		return
	}
	cl.once.Do(func() {
		attrs := []any{"remote", c.RemoteAddr().String(), "tls", tls.VersionName(cs.Version), "resumed", cs.DidResume}
		if s := cl.sessions.Resumed(); s != nil {
			attrs = append(attrs, "from", shortID(s.ID))
		}
		if issued := cl.sessions.Issued(); len(issued) > 0 {
			attrs = append(attrs, "issued", shortID(issued[len(issued)-1].ID))
		}
		log.Info("connection", attrs...)
	})
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>tlscache</title>
<style>body{font-family:sans-serif;max-width:48em;margin:2em auto}td{padding:.2em 1em}code{font-size:1.1em}form{display:inline}</style>
</head><body>
<h1 id="status">{{if .Resumed}}Resumed{{else}}New{{end}} {{.Version}} connection</h1>
<p>{{if .Resumed}}This connection resumed a TLS session: no full handshake.{{else}}This connection made a full handshake.{{end}}
A reload usually reuses the connection; reconnect to see whether a new one resumes.</p>
<p><a id="reconnect" href="/reconnect">Reconnect on a new connection</a></p>
<table>
<tr><td>Cipher suite</td><td>{{.CipherSuite}}</td></tr>
<tr><td>ALPN</td><td>{{.Protocol}}</td></tr>
<tr><td>Server name</td><td>{{.ServerName}}</td></tr>
<tr><td>Resumed from</td><td>{{with .ResumedFrom}}<code>{{.ID}}</code> (created {{.Created.Format "2006-01-02 15:04:05 MST"}}){{else}}-{{end}}</td></tr>
<tr><td>Issued</td><td>{{range .Issued}}<code>{{.ID}}</code>{{if .Cached}} cached{{else}} not cached{{end}}, expires {{.Expires.Format "2006-01-02 15:04:05 MST"}} {{else}}-{{end}}</td></tr>
<tr><td>Policy</td><td>{{.Policy}} (mode {{.Mode}})</td></tr>
{{if eq .Policy "login"}}<tr><td>Logged in</td><td id="logged-in">{{if .LoggedIn}}yes: this connection's sessions may resume{{else}}no: nothing of this connection resumes{{end}}</td></tr>{{end}}
</table>
{{if eq .Policy "login"}}<p>
<form method="post" action="/login"><button id="login">Log in: approve this connection's sessions</button></form>
<form method="post" action="/logout"><button id="logout">Log out: revoke them on every server</button></form>
</p>{{end}}
<h2>Cache</h2>
<table>
<tr><td>Sessions</td><td>{{.Stats.Number}}</td></tr>
<tr><td>Accept / good</td><td>{{.Stats.Accept}} / {{.Stats.AcceptGood}}</td></tr>
<tr><td>Hits / misses</td><td>{{.Stats.Hits}} / {{.Stats.Misses}}</td></tr>
<tr><td>Timeouts / cache full</td><td>{{.Stats.Timeouts}} / {{.Stats.CacheFull}}</td></tr>
<tr><td>Context mismatches</td><td>{{.Stats.ContextMismatches}}</td></tr>
</table>
</body></html>
`))
