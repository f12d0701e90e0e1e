package adapter

import (
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/tlscache/tlscache/tlscache"
)

// DefaultTicketsPerKey is how many tickets a single-use [ClientCache] keeps
// per server when [ClientOptions.TicketsPerKey] is zero; [MaxTicketsPerKey]
// is the most it keeps.
const (
	DefaultTicketsPerKey = 4
	MaxTicketsPerKey     = 256 // slots are numbered by one byte
)

// ClientOptions configure a [ClientCache]. The zero value means the
// defaults.
type ClientOptions struct {
	// IDContext is stored with every session and required on lookup, so
	// that configs with different trust settings (RootCAs, client
	// certificates) can share one cache without resuming each other's
	// sessions. Such configs overwrite each other's session for a server
	// they both talk to, but never use it.
	IDContext []byte
	// SingleUse hands out each ticket at most once (RFC 8446, appendix
	// C.4): parallel connections to one server each get their own ticket,
	// and no two connections can be linked by their ticket.
	SingleUse bool
	// TicketsPerKey is how many tickets single use keeps per server; zero
	// means [DefaultTicketsPerKey].
	TicketsPerKey int
}

// ClientCache is a [tls.ClientSessionCache] on a [tlscache.Cache]. The
// cache's mode applies with the Client bit: without it, handshakes store
// nothing; [tlscache.NoInternalStore] and [tlscache.NoInternalLookup] and
// the hooks work as for OpenSSL. Session IDs are crypto/tls's session keys
// (the server name, or the address when there is none); with
// [ClientOptions.SingleUse], the key followed by a zero byte and the slot
// number.
//
// A session's State (the encoded ticket and crypto/tls state) is written
// only when something may read it: when the cache has a hook, or the
// ClientCache a session file ([OpenClientCache]). Otherwise
// [ClientCache.Put] and [ClientCache.Add] keep the [*tls.ClientSessionState]
// alone, as the session's Value, charged against the cache's byte budget by
// an estimate (ticket plus a typical server chain), and [ClientCache.Export]
// and [ClientCache.ExportAll] encode it when asked (fleet.SaveSessions,
// which seals State, skips such sessions).
type ClientCache struct {
	cache *tlscache.Cache
	opts  ClientOptions

	mu      sync.Mutex
	filling map[string]int // single use: slot IDs being stored by a Put now
	resumed map[string]int // server names whose TLS 1.2 handshake resumed, until their Put

	file *clientFile // set by OpenClientCache
}

// maxResumedMarks bounds ClientCache.resumed: a server that resumes without
// sending a new ticket leaves a mark no Put takes.
const maxResumedMarks = 1024

var _ tls.ClientSessionCache = (*ClientCache)(nil)

// NewClientCache returns a [ClientCache] on cache. A nil cache means a new
// one in mode [tlscache.Client] with the default size and timeout; a nil
// opts means the defaults.
//
// A cache whose mode has the Server bit and not the Client bit (what
// [tlscache.New] gives without [tlscache.Options.Mode]) would store no
// client session: NewClientCache adds the Client bit to its mode, since a
// cache handed to a ClientCache is for client sessions. A cache in mode
// [tlscache.Off] (or with only NoInternal bits and such) keeps its mode:
// automatic storage is off by choice, and sessions added by hand still
// resume.
func NewClientCache(cache *tlscache.Cache, opts *ClientOptions) *ClientCache {
	if cache == nil {
		cache = tlscache.New(&tlscache.Options{Mode: tlscache.Client})
	}
	if m := cache.Mode(); m&tlscache.Server != 0 && m&tlscache.Client == 0 {
		cache.SetMode(m | tlscache.Client)
	}
	cc := &ClientCache{cache: cache}
	if opts != nil {
		cc.opts = *opts
		cc.opts.IDContext = append([]byte(nil), opts.IDContext...)
	}
	if cc.opts.TicketsPerKey <= 0 {
		cc.opts.TicketsPerKey = DefaultTicketsPerKey
	}
	cc.opts.TicketsPerKey = min(cc.opts.TicketsPerKey, MaxTicketsPerKey)
	if !cc.opts.SingleUse {
		cc.opts.TicketsPerKey = 1
	}
	return cc
}

// Cache returns the underlying cache.
func (cc *ClientCache) Cache() *tlscache.Cache { return cc.cache }

// Install sets cfg.ClientSessionCache to cc and wraps cfg.VerifyConnection
// (calling the one cfg had) so that verified handshakes count as
// [tlscache.Stats.ConnectGood] and drive the automatic flush, and so that
// the new hook follows OpenSSL: it fires for the session of a full handshake
// and for every TLS 1.3 ticket, but not for the ticket a server re-issues
// after a TLS 1.2 resumption, which replaces the cached session quietly
// (with [ClientOptions.SingleUse] it is a new ticket, reported as such,
// since the resumed one was used up). Without Install (ClientSessionCache
// set by hand) Put cannot tell, and the hook fires for every ticket. It does
// nothing if cfg.ClientSessionCache is cc already.
func (cc *ClientCache) Install(cfg *tls.Config) {
	if cfg.ClientSessionCache == cc {
		return // installed already (or a Clone of a config it was installed on)
	}
	cfg.ClientSessionCache = cc
	user := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if user != nil {
			if err := user(cs); err != nil {
				return err
			}
		}
		if cs.DidResume && cs.Version < tls.VersionTLS13 && cs.ServerName != "" && !cc.opts.SingleUse {
			cc.markResumed(cs.ServerName)
		}
		cc.cache.HandshakeDone(tlscache.Client)
		return nil
	}
}

// markResumed notes that a TLS 1.2 handshake with key resumed: the Put of
// the ticket it re-issues is not a new session.
func (cc *ClientCache) markResumed(key string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.resumed == nil || len(cc.resumed) >= maxResumedMarks {
		cc.resumed = make(map[string]int)
	}
	cc.resumed[key]++
}

func (cc *ClientCache) takeResumed(key string) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := cc.resumed[key]
	if n == 0 {
		return false
	}
	if n == 1 {
		delete(cc.resumed, key)
	} else {
		cc.resumed[key] = n - 1
	}
	return true
}

// Get is called by crypto/tls once per client handshake: it counts
// [tlscache.Stats.Connect] and looks the session up (with
// [ClientOptions.SingleUse], takes one).
func (cc *ClientCache) Get(key string) (*tls.ClientSessionState, bool) {
	cc.cache.HandshakeStart(tlscache.Client)
	if !cc.opts.SingleUse {
		return cc.decode(cc.cache.Lookup([]byte(key), cc.opts.IDContext))
	}
	internal := cc.cache.Mode()&tlscache.NoInternalLookup == 0
	for slot := range cc.opts.TicketsPerKey {
		id := cc.slotID(key, slot)
		if internal && cc.cache.Peek(id) == nil {
			continue
		}
		if cs, ok := cc.decode(cc.cache.Take(id, cc.opts.IDContext)); ok {
			cc.changed()
			return cs, true
		}
	}
	return nil, false
}

func (cc *ClientCache) decode(s *tlscache.Session) (*tls.ClientSessionState, bool) {
	if s == nil {
		return nil, false
	}
	if cs, ok := s.Value.(*tls.ClientSessionState); ok {
		return cs, true
	}
	// From a get hook: only the encoded state travelled.
	cs, err := decodeClientState(s.State)
	if err != nil {
		return nil, false
	}
	return cs, true
}

// Put is called by crypto/tls for each ticket received, and with a nil cs
// to delete the session [ClientCache.Get] just gave it, after a failed
// resumption or when the server's certificate expired. Deleting never
// inserts or evicts anything: it removes the key's session and calls the
// remove hook. With [ClientOptions.SingleUse] that session was taken
// already, so the key's other tickets are kept.
func (cc *ClientCache) Put(key string, cs *tls.ClientSessionState) {
	if key == "" {
		return
	}
	if cs == nil {
		if !cc.opts.SingleUse && cc.Remove(key) {
			cc.changed()
		}
		return
	}
	id := cc.reserveSlot(key)
	defer cc.releaseSlot(id)
	s, err := cc.newSession(id, cs)
	if err != nil {
		return // nothing crypto/tls can do about it: no resumption next time
	}
	if cc.takeResumed(key) {
		// The re-issue of a resumed TLS 1.2 session: OpenSSL calls no
		// new hook for a resumption; the newer ticket replaces the old.
		if m := cc.cache.Mode(); m&tlscache.Client != 0 && m&tlscache.NoInternalStore == 0 {
			cc.cache.Add(s)
			cc.changed()
		}
		return
	}
	cc.cache.NewSession(tlscache.Client, s)
	cc.changed()
}

// Add adds a session by hand (SSL_CTX_add_session), whatever the mode.
func (cc *ClientCache) Add(key string, cs *tls.ClientSessionState) (bool, error) {
	if key == "" || cs == nil {
		return false, fmt.Errorf("tlscache/adapter: Add needs a key and a session")
	}
	id := cc.reserveSlot(key)
	defer cc.releaseSlot(id)
	s, err := cc.newSession(id, cs)
	if err != nil {
		return false, err
	}
	return cc.cache.Add(s), nil
}

// Remove removes the key's session(s) and reports whether one was cached.
func (cc *ClientCache) Remove(key string) bool {
	removed := false
	for slot := range cc.opts.TicketsPerKey {
		if cc.cache.RemoveID(cc.slotID(key, slot)) {
			removed = true
		}
	}
	return removed
}

// newSession returns the session of cs. Its State is encoded only when
// something may read it: a hook of the cache (an external store, a fleet)
// or the session file, which ExportAll rewrites on every change. Otherwise
// the session holds cs alone, charged against the byte budget by an
// estimate (see clientValueSize), and Export and ExportAll encode it when
// asked.
func (cc *ClientCache) newSession(id []byte, cs *tls.ClientSessionState) (*tlscache.Session, error) {
	if cc.file == nil && !cc.cache.HasHooks() {
		ticket, err := clientTicket(cs)
		if err != nil {
			return nil, err
		}
		return &tlscache.Session{ID: id, IDContext: cc.opts.IDContext, Value: cs, ValueSize: clientValueSize(ticket)}, nil
	}
	state, err := encodeClientState(cs)
	if err != nil {
		return nil, err
	}
	return &tlscache.Session{ID: id, IDContext: cc.opts.IDContext, State: state, Value: cs}, nil
}

// slotID is the session ID of one of a key's tickets.
func (cc *ClientCache) slotID(key string, slot int) []byte {
	if !cc.opts.SingleUse {
		return []byte(key)
	}
	return append([]byte(key), 0, byte(slot)) // slot < MaxTicketsPerKey
}

// reserveSlot returns the ID for a new ticket of key: with single use, an
// empty slot, else the slot whose ticket expires first, skipping slots that
// concurrent Puts are filling. releaseSlot must follow.
func (cc *ClientCache) reserveSlot(key string) []byte {
	if !cc.opts.SingleUse {
		return []byte(key)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var best []byte
	var bestSess *tlscache.Session
	for slot := range cc.opts.TicketsPerKey {
		id := cc.slotID(key, slot)
		if cc.filling[string(id)] > 0 {
			continue
		}
		s := cc.cache.Peek(id)
		if s == nil {
			best = id
			break
		}
		if bestSess == nil || s.Expires().Before(bestSess.Expires()) {
			best, bestSess = id, s
		}
	}
	if best == nil { // every slot is being filled
		best = cc.slotID(key, 0)
	}
	if cc.filling == nil {
		cc.filling = make(map[string]int)
	}
	cc.filling[string(best)]++
	return best
}

func (cc *ClientCache) releaseSlot(id []byte) {
	if !cc.opts.SingleUse {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.filling[string(id)]--; cc.filling[string(id)] <= 0 {
		delete(cc.filling, string(id))
	}
}
