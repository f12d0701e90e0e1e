package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/quicadapter"
	"github.com/tlscache/tlscache/tlscache"
)

// admin is the admin API: plain HTTP on its own listener, loopback only
// unless -admin-public (which needs a token). Every answer is JSON, except
// /metrics. What a web page could make a browser send is refused (see
// guard): a Host other than the listener's address or a loopback name (DNS
// rebinding), and a state-changing request from another origin or without
// a JSON body type (CSRF).
//
//	GET    /                        this list of endpoints
//	GET    /sessions                cached sessions, metadata only
//	DELETE /sessions/{id}           remove the session whose hex ID starts with id
//	POST   /sessions/flush-expired  remove the expired sessions
//	POST   /sessions/flush-all      remove every session
//	GET    /config                  mode, timeout and size
//	PATCH  /config                  change them: {"mode":"Server|NoAutoClear","timeout":"1h","size":100}
//	GET    /metrics                 Prometheus text exposition format
type admin struct {
	cache  *tlscache.Cache
	srv    *adapter.Server
	tier   *fleet.Tier         // nil without -redis
	h3     *quicadapter.Server // nil without -http3
	policy string
	log    *slog.Logger
	token  []byte   // SHA-256 of the bearer token; nil: no token
	addr   net.Addr // where the API listens: the Host it answers to

	configMu sync.Mutex // serializes PATCH /config
}

// maxAdminBody bounds a request body: a config change is a few bytes.
const maxAdminBody = 64 << 10

var adminEndpoints = []string{
	"GET /sessions",
	"DELETE /sessions/{id}",
	"POST /sessions/flush-expired",
	"POST /sessions/flush-all",
	"GET /config",
	"PATCH /config",
	"GET /metrics",
}

func (a *admin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSONStatus(w, http.StatusOK, map[string]any{"endpoints": adminEndpoints})
	})
	mux.HandleFunc("GET /sessions", a.listSessions)
	mux.HandleFunc("DELETE /sessions/{id}", a.deleteSession)
	mux.HandleFunc("POST /sessions/flush-expired", a.flushExpired)
	mux.HandleFunc("POST /sessions/flush-all", a.flushAll)
	mux.HandleFunc("GET /config", a.getConfig)
	mux.HandleFunc("PATCH /config", a.patchConfig)
	mux.Handle("GET /metrics", metricsHandler(a.cache, a.tier, a.srv, a.h3))
	return a.guard(a.authorize(mux))
}

// guard refuses the requests a web page could make a browser send to the
// admin API, token or not:
//   - a Host header that is not the listener's own address or a loopback
//     name: a DNS-rebinding page (evil.example resolving to 127.0.0.1)
//     would otherwise read and change the API as if same-origin;
//   - a state-changing request (not GET, HEAD or OPTIONS) that a browser
//     marks cross-origin, by Sec-Fetch-Site or an Origin other than the
//     Host (net/http's CrossOriginProtection);
//   - a state-changing request whose Content-Type is not application/json,
//     which no cross-origin page can send without a CORS preflight, which
//     the API never answers. Bodiless requests (DELETE, POST /sessions/...)
//     must say it too.
func (a *admin) guard(next http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: the admin API takes no state-changing requests from web pages")
	}))
	checked := csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s needs Content-Type: application/json (got %q)", r.Method, r.Header.Get("Content-Type")))
				return
			}
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not this admin API's address (%s) nor a loopback name", r.Host, a.addr))
			return
		}
		checked.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// hostAllowed reports whether a request's Host names this listener:
// localhost (or a name under .localhost, which browsers resolve to
// loopback themselves), a loopback IP, or the listener's own IP (any IP
// literal when it listens on all addresses: a page can make a browser send
// an IP literal only to that IP). A port, if given, must be the
// listener's.
func (a *admin) hostAllowed(hostport string) bool {
	if hostport == "" {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "" // no port
	}
	tcp, _ := a.addr.(*net.TCPAddr)
	if tcp == nil {
		return false
	}
	if port != "" && port != strconv.Itoa(tcp.Port) {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if ip == nil {
		return false
	}
	return ip.IsLoopback() || ip.Equal(tcp.IP) || tcp.IP.IsUnspecified()
}

// hashToken returns what admin.token holds for a bearer token, nil for none.
func hashToken(token string) []byte {
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// authorize requires "Authorization: Bearer <token>" when a token is set.
// The digests are compared in constant time, so neither the token's
// content nor its length leaks through timing.
func (a *admin) authorize(next http.Handler) http.Handler {
	if a.token == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], a.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tlscache admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminSession is what the admin API shows of a cached session: metadata,
// never the secret state.
type adminSession struct {
	ID         string    `json:"id"`      // hex, a prefix of the identity
	Context    string    `json:"context"` // hex, a prefix of the IDContext
	ServerName string    `json:"server_name,omitempty"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	Expired    bool      `json:"expired"`
}

func (a *admin) listSessions(w http.ResponseWriter, r *http.Request) {
	now := a.cache.Now()
	list := []adminSession{}
	for _, s := range a.srv.Sessions() {
		list = append(list, adminSession{
			ID:         shortID(s.ID),
			Context:    shortID(s.IDContext),
			ServerName: s.ServerName,
			Created:    s.Created,
			Expires:    s.Expires,
			Expired:    now.After(s.Expires),
		})
	}
	slices.SortFunc(list, func(x, y adminSession) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	writeJSONStatus(w, http.StatusOK, map[string]any{"count": len(list), "sessions": list})
}

// deleteSession removes the one session whose hex ID starts with the
// path's {id}: any prefix, as long as it names a single session.
func (a *admin) deleteSession(w http.ResponseWriter, r *http.Request) {
	prefix := strings.ToLower(r.PathValue("id"))
	if !isHex(prefix) || len(prefix) > 2*adapter.IDLen {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("session ID %q is not a hex prefix of at most %d digits", r.PathValue("id"), 2*adapter.IDLen))
		return
	}
	var match []*tlscache.Session
	for s := range a.cache.All() {
		if strings.HasPrefix(hex.EncodeToString(s.ID), prefix) {
			match = append(match, s)
		}
	}
	switch {
	case len(match) == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no cached session ID starts with %q", prefix))
		return
	case len(match) > 1:
		writeError(w, http.StatusConflict, fmt.Sprintf("%d cached session IDs start with %q: give more digits", len(match), prefix))
		return
	}
	s := match[0]
	if !a.srv.Revoke(s.ID) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("session %s left the cache meanwhile", shortID(s.ID)))
		return
	}
	a.log.Info("admin: session removed", "id", shortID(s.ID))
	writeJSONStatus(w, http.StatusOK, map[string]any{"removed": shortID(s.ID)})
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (a *admin) flushExpired(w http.ResponseWriter, r *http.Request) {
	n := a.cache.Flush(a.cache.Now())
	a.log.Info("admin: expired sessions flushed", "removed", n)
	writeJSONStatus(w, http.StatusOK, map[string]int{"removed": n})
}

func (a *admin) flushAll(w http.ResponseWriter, r *http.Request) {
	n := a.cache.FlushAll()
	a.log.Info("admin: all sessions flushed", "removed", n)
	writeJSONStatus(w, http.StatusOK, map[string]int{"removed": n})
}

// adminConfig is the cache's runtime configuration as GET /config shows it.
type adminConfig struct {
	Policy  string `json:"policy"` // fixed at start
	Mode    string `json:"mode"`
	Timeout string `json:"timeout"`
	Size    int    `json:"size"` // 0: no limit
}

func (a *admin) config() adminConfig {
	return adminConfig{
		Policy:  a.policy,
		Mode:    a.cache.Mode().String(),
		Timeout: a.cache.Timeout().String(),
		Size:    a.cache.Size(),
	}
}

func (a *admin) getConfig(w http.ResponseWriter, r *http.Request) {
	writeJSONStatus(w, http.StatusOK, a.config())
}

// configPatch is the body of PATCH /config; absent fields stay as they are.
type configPatch struct {
	Mode    *string `json:"mode"`    // as tlscache.ParseMode reads it: "Server|NoAutoClear", "0x282"
	Timeout *string `json:"timeout"` // a Go duration: "90s", "2h"
	Size    *int    `json:"size"`    // 0: no limit
}

// patchConfig changes mode, timeout and size. It validates the whole body
// before applying any of it: a bad field changes nothing.
func (a *admin) patchConfig(w http.ResponseWriter, r *http.Request) {
	var p configPatch
	if err := decodeJSON(w, r, &p); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.Mode == nil && p.Timeout == nil && p.Size == nil {
		writeError(w, http.StatusBadRequest, `nothing to change: give one or more of "mode", "timeout", "size"`)
		return
	}
	var (
		mode    tlscache.Mode
		timeout time.Duration
		err     error
	)
	if p.Mode != nil {
		if mode, err = tlscache.ParseMode(*p.Mode); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("mode: %v", err))
			return
		}
	}
	if p.Timeout != nil {
		if timeout, err = time.ParseDuration(*p.Timeout); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout: %q is not a Go duration such as \"90s\" or \"2h\"", *p.Timeout))
			return
		}
		if timeout <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout: %s is not positive", timeout))
			return
		}
	}
	if p.Size != nil && *p.Size < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("size: %d is negative (0 means no limit)", *p.Size))
		return
	}

	a.configMu.Lock()
	defer a.configMu.Unlock()
	prev := a.config()
	if p.Mode != nil {
		a.cache.SetMode(mode)
	}
	if p.Timeout != nil {
		a.cache.SetTimeout(timeout)
	}
	if p.Size != nil {
		a.cache.SetSize(*p.Size)
	}
	cur := a.config()
	a.log.Info("admin: config changed", "mode", cur.Mode, "timeout", cur.Timeout, "size", cur.Size)
	writeJSONStatus(w, http.StatusOK, map[string]adminConfig{"previous": prev, "config": cur})
}

// decodeJSON reads a request body holding exactly one JSON object with
// known fields only, and explains what is wrong with any other.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var (
			syntax    *json.SyntaxError
			typ       *json.UnmarshalTypeError
			tooLarge  *http.MaxBytesError
			errPrefix = "request body: "
		)
		switch {
		case errors.Is(err, io.EOF):
			return errors.New(errPrefix + "empty; want a JSON object")
		case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%sbad JSON: %v", errPrefix, err)
		case errors.As(err, &typ):
			return fmt.Errorf("%sfield %q: want a %s, got a JSON %s", errPrefix, typ.Field, jsonKind(typ.Type.String()), typ.Value)
		case errors.As(err, &tooLarge):
			return fmt.Errorf("%slarger than %d bytes", errPrefix, tooLarge.Limit)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("%s%s (known: \"mode\", \"timeout\", \"size\")", errPrefix, strings.TrimPrefix(err.Error(), "json: "))
		}
		return fmt.Errorf("%s%v", errPrefix, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body: more than one JSON value")
	}
	return nil
}

// jsonKind names a Go type as the JSON a client should send for it.
func jsonKind(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "string"
	case "int":
		return "number (an integer)"
	}
	return "JSON object"
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // a terminal reads this, not a browser
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSONStatus(w, status, map[string]string{"error": msg})
}

// listenAdmin listens on addr for the admin API. Unless public is set it
// refuses any address that is not loopback: the API removes sessions and
// changes the cache, and speaks plain HTTP. Public, it needs a token.
func listenAdmin(addr string, public, token bool) (net.Listener, error) {
	if public && !token {
		return nil, errors.New("-admin-public needs a token: set $TLSCACHE_ADMIN_TOKEN (or -admin-token); without one anyone who reaches the admin API could remove sessions and change the cache")
	}
	if !public {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("-admin %q: %v", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("-admin %q is not a loopback address: the admin API (plain HTTP) would be reachable from the network; give -admin-public to mean it", addr)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !public && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("-admin %q listens on %s, not loopback; give -admin-public to mean it", addr, ln.Addr())
	}
	return ln, nil
}
