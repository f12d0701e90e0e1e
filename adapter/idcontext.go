package adapter

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"strings"
	"sync"
)

// maxNames bounds the per-config cache of server names and the registry of
// contexts: clients choose the server names, so they must not grow memory.
const maxNames = 4096

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

	registry *nameRegistry // where served names are recorded for listings

	mu    sync.Mutex
	names map[string][]byte // server name -> context, shared by its sessions
}

type certInfo struct {
	leaf        *x509.Certificate // nil if it does not parse
	fingerprint [32]byte          // SHA-256 over the chain's DER certificates
}

func newContexts(appContext []byte, cfg *tls.Config, registry *nameRegistry) *contexts {
	c := &contexts{
		registry:   registry,
		appContext: appContext,
		clientAuth: cfg.ClientAuth,
		dynamic:    cfg.GetCertificate != nil,
		names:      make(map[string][]byte),
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

// forName returns the context of sessions served under serverName, and
// whether the config has a certificate for that name (or chooses them at
// run time). Only such names are remembered, so that clients sending junk
// server names cannot fill the memory or push out real names.
func (c *contexts) forName(serverName string) (ctx []byte, served bool) {
	name := normalizeName(serverName)
	c.mu.Lock()
	ctx, ok := c.names[name]
	c.mu.Unlock()
	if ok {
		return ctx, true
	}
	ctx = c.derive(name)
	if !c.serves(name) {
		return ctx, false
	}
	c.mu.Lock()
	if len(c.names) < maxNames {
		c.names[name] = ctx
	}
	c.mu.Unlock()
	if c.registry != nil {
		c.registry.record(ctx, name)
	}
	return ctx, true
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

// nameRegistry remembers which server name each context was derived for, so
// that listings can speak of names. Only names a config serves are
// recorded (see forName).
type nameRegistry struct {
	mu    sync.Mutex
	names map[string]string // string(context) -> server name
}

func (r *nameRegistry) record(ctx []byte, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = make(map[string]string)
	}
	if _, ok := r.names[string(ctx)]; !ok && len(r.names) < maxNames {
		r.names[string(ctx)] = normalizeName(name)
	}
}

func (r *nameRegistry) name(ctx []byte) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[string(ctx)]
}
