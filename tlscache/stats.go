package tlscache

import "sync/atomic"

// Stats are the cache's counters, named as OpenSSL names them
// (SSL_CTX_sess_number, SSL_CTX_sess_hits and the rest), plus the counters
// OpenSSL lacks that an operator of a fleet needs.
type Stats struct {
	Number      int   `json:"number"`       // sessions cached now (SSL_CTX_sess_number)
	Connect     int64 `json:"connect"`      // client handshakes started (SSL_CTX_sess_connect)
	ConnectGood int64 `json:"connect_good"` // client handshakes completed (SSL_CTX_sess_connect_good)
	Accept      int64 `json:"accept"`       // server handshakes started (SSL_CTX_sess_accept)
	AcceptGood  int64 `json:"accept_good"`  // server handshakes completed (SSL_CTX_sess_accept_good)
	Hits        int64 `json:"hits"`         // lookups that returned a session to resume (SSL_CTX_sess_hits)
	CbHits      int64 `json:"cb_hits"`      // resumable sessions the get hook returned (SSL_CTX_sess_cb_hits)
	Misses      int64 `json:"misses"`       // internal lookups that found nothing (SSL_CTX_sess_misses)
	Timeouts    int64 `json:"timeouts"`     // sessions found expired at lookup (SSL_CTX_sess_timeouts)
	CacheFull   int64 `json:"cache_full"`   // sessions evicted for room (SSL_CTX_sess_cache_full)

	// Beyond OpenSSL.
	ContextMismatches int64 `json:"context_mismatches"` // sessions found under another IDContext: a silent miss
	StoreErrors       int64 `json:"store_errors"`       // hooks (external stores) that returned an error
	InternalHits      int64 `json:"internal_hits"`      // Hits served by the internal cache
	ExternalHits      int64 `json:"external_hits"`      // Hits served by the get hook
	TooLarge          int64 `json:"too_large"`          // sessions not cached: above Options.MaxSessionBytes
	Refused           int64 `json:"refused"`            // probationary sessions not cached: only established ones could have made room
}

// lockedCounters are counted under Cache.mu, by the paths that hold it
// anyway: internal hits and misses.
type lockedCounters struct {
	hits, misses int64
}

// counters are the statistics counted without the lock; each is an atomic.
type counters struct {
	connect, accept, hits, internalHits, misses atomic.Int64
	connectGood, acceptGood                     atomic.Int64
	cbHits, timeouts, cacheFull                 atomic.Int64
	contextMismatches, storeErrors              atomic.Int64
	externalHits, tooLarge, refused             atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Connect:           c.connect.Load(),
		ConnectGood:       c.connectGood.Load(),
		Accept:            c.accept.Load(),
		AcceptGood:        c.acceptGood.Load(),
		Hits:              c.hits.Load(),
		CbHits:            c.cbHits.Load(),
		Misses:            c.misses.Load(),
		Timeouts:          c.timeouts.Load(),
		CacheFull:         c.cacheFull.Load(),
		ContextMismatches: c.contextMismatches.Load(),
		StoreErrors:       c.storeErrors.Load(),
		InternalHits:      c.internalHits.Load(),
		ExternalHits:      c.externalHits.Load(),
		TooLarge:          c.tooLarge.Load(),
		Refused:           c.refused.Load(),
	}
}
