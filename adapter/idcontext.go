package adapter

import (
	"container/list"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Server names come from clients, so the memory they take is bounded in
// bytes: each config's cache of contexts by name shares maxNameCacheBytes
// with every other config of a Server, and the registry of names for
// listings keeps at most maxRegistryBytes, dropping the names least
// recently issued a session first. A name costs its length plus
// nameOverhead. Only valid host names of at most maxNameLen bytes that a
// config serves are recorded, and only once a handshake got as far as
// issuing a session (a certificate was chosen).
const (
	maxNameLen        = 253
	nameOverhead      = 96 // the context (32 bytes), map entry and list element
	maxNameCacheBytes = 4 << 20
	maxRegistryBytes  = 1 << 20
)

// contexts derives the IDContext of server sessions for one *tls.Config:
// SHA-256 over the application's IDContext, the server name, a fingerprint
// of the certificate chain that config serves for that name, and the
// client-auth policy. Two servers with the same configuration derive the
// same contexts, so sessions move across a fleet; a session issued for one
// virtual host or certificate does not resume on another.
type contexts struct {
	appContext []byte
	clientAuth tls.ClientAuthType
	dynamic    bool       // GetCertificate chooses certificates at run time
	certs      []certInfo // static certificates, in config order
	shape      configShape

	registry *nameRegistry // where served names are recorded for listings
	budget   *atomic.Int64 // bytes left for the name caches of all configs
	charged  *atomic.Int64 // bytes this cache took from budget; refunded when collected

	mu    sync.Mutex
	names map[string][]byte // server name -> context, shared by its sessions
}

type certInfo struct {
	leaf        *x509.Certificate // nil if it does not parse
	fingerprint [32]byte          // SHA-256 over the chain's DER certificates
}

// configShape is what of a config its contexts derive from: a config whose
// shape changed (another certificate, client-auth policy or GetCertificate)
// gets new contexts.
type configShape struct {
	clientAuth tls.ClientAuthType
	dynamic    bool
	certs      []certIdent
}

// certIdent tells certificates apart by identity: the first element of
// the chain, its length and the parsed leaf.
type certIdent struct {
	first *[]byte
	n     int
	leaf  *x509.Certificate
}

func shapeOf(cfg *tls.Config) configShape {
	s := configShape{clientAuth: cfg.ClientAuth, dynamic: cfg.GetCertificate != nil}
	for _, cert := range cfg.Certificates {
		id := certIdent{n: len(cert.Certificate), leaf: cert.Leaf}
		if id.n > 0 {
			id.first = &cert.Certificate[0]
		}
		s.certs = append(s.certs, id)
	}
	return s
}

func (s configShape) equal(o configShape) bool {
	return s.clientAuth == o.clientAuth && s.dynamic == o.dynamic && slices.Equal(s.certs, o.certs)
}

func newContexts(appContext []byte, cfg *tls.Config, registry *nameRegistry, budget *atomic.Int64) *contexts {
	c := &contexts{
		registry:   registry,
		budget:     budget,
		charged:    new(atomic.Int64),
		appContext: appContext,
		clientAuth: cfg.ClientAuth,
		dynamic:    cfg.GetCertificate != nil,
		shape:      shapeOf(cfg),
		names:      make(map[string][]byte),
	}
	if budget != nil {
		runtime.AddCleanup(c, func(charged *atomic.Int64) { budget.Add(charged.Load()) }, c.charged)
	}
	for _, cert := range cfg.Certificates {
		h := sha256.New()
		for _, der := range cert.Certificate {
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(der)))
			h.Write(n[:])
			h.Write(der)
		}
		ci := certInfo{leaf: cert.Leaf}
		h.Sum(ci.fingerprint[:0])
		if ci.leaf == nil && len(cert.Certificate) > 0 {
			ci.leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
		c.certs = append(c.certs, ci)
	}
	return c
}

// forName returns the context of sessions served under serverName. It
// records nothing: a lookup runs before a certificate is chosen, and the
// handshake may still fail.
func (c *contexts) forName(serverName string) []byte {
	name := normalizeName(serverName)
	if ctx := c.cached(name); ctx != nil {
		return ctx
	}
	return c.derive(name)
}

func (c *contexts) cached(name string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names[name]
}

// issued returns the context of a session issued under serverName, and
// records the name (for sharing its context and for listings) if it is a
// valid host name that the config serves. Only such names are remembered,
// so that clients sending junk server names cannot fill the memory or push
// out real names.
func (c *contexts) issued(serverName string) []byte {
	name := normalizeName(serverName)
	if ctx := c.cached(name); ctx != nil {
		c.registry.record(ctx, name)
		return ctx
	}
	ctx := c.derive(name)
	if !validHostname(name) || !c.serves(name) {
		return ctx
	}
	cost := int64(len(name) + nameOverhead)
	c.mu.Lock()
	if prev, ok := c.names[name]; ok {
		ctx = prev
	} else if c.budget == nil || c.budget.Add(-cost) >= 0 {
		c.names[name] = ctx
		c.charged.Add(cost)
	} else {
		c.budget.Add(cost) // no room: derived again next time
	}
	c.mu.Unlock()
	c.registry.record(ctx, name)
	return ctx
}

// serves reports whether name is one the config has a certificate for.
func (c *contexts) serves(name string) bool {
	if c.dynamic {
		return name != ""
	}
	for _, ci := range c.certs {
		if name != "" && ci.leaf != nil && ci.leaf.VerifyHostname(name) == nil {
			return true
		}
	}
	return false
}

func (c *contexts) derive(name string) []byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("tlscache server context v1"))
	field(c.appContext)
	field([]byte(name))
	if fp, ok := c.certFor(name); ok {
		field(fp[:])
	} else {
		field(nil)
	}
	field([]byte{byte(c.clientAuth)})
	return h.Sum(nil)
}

// certFor picks the certificate crypto/tls serves for name, as its
// getCertificate does without the client's algorithms: the only one, else
// the first whose leaf is valid for the name, else the first. With a
// GetCertificate callback there is no static choice to bind to.
func (c *contexts) certFor(name string) ([32]byte, bool) {
	if c.dynamic || len(c.certs) == 0 {
		return [32]byte{}, false
	}
	if len(c.certs) > 1 && name != "" {
		for _, ci := range c.certs {
			if ci.leaf != nil && ci.leaf.VerifyHostname(name) == nil {
				return ci.fingerprint, true
			}
		}
	}
	return c.certs[0].fingerprint, true
}

func normalizeName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// validHostname reports whether a normalized name is a host name: at most
// maxNameLen bytes of dot-separated labels of 1 to 63 letters, digits,
// hyphens and underscores.
func validHostname(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		if label++; label > 63 {
			return false
		}
	}
	return label > 0
}

// nameRegistry remembers which server name each context was derived for, so
// that listings can speak of names. Only names a config serves are
// recorded (see contexts.issued), within maxRegistryBytes: when full, the
// name least recently issued a session is dropped, so names in use stay.
type nameRegistry struct {
	mu    sync.Mutex
	names map[string]*list.Element // string(context) -> element of order
	order list.List                // of *registered, most recently issued first
	bytes int
}

type registered struct {
	ctx, name string
}

func (r *nameRegistry) record(ctx []byte, name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = make(map[string]*list.Element)
	}
	if e, ok := r.names[string(ctx)]; ok {
		r.order.MoveToFront(e)
		return
	}
	cost := len(name) + nameOverhead
	for r.bytes+cost > maxRegistryBytes && r.order.Len() > 0 {
		old := r.order.Remove(r.order.Back()).(*registered)
		delete(r.names, old.ctx)
		r.bytes -= len(old.name) + nameOverhead
	}
	r.names[string(ctx)] = r.order.PushFront(&registered{ctx: string(ctx), name: name})
	r.bytes += cost
}

func (r *nameRegistry) name(ctx []byte) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.names[string(ctx)]; ok {
		return e.Value.(*registered).name
	}
	return ""
}
