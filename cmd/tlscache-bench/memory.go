package main

import (
	"crypto/tls"
	"runtime"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

type memResult struct {
	sessions   int
	perSession float64 // heap bytes per cached session, state included
	state      int     // bytes of the serialized state (SessionState.Bytes)
}

// measureMemory caches n server sessions through the adapter's WrapSession,
// as handshakes do, and returns the heap growth per session (GC forced
// before and after) next to the size of the serialized state.
func measureMemory(ss *tls.SessionState, n int) memResult {
	cfg, _ := baseConfigs(tls.VersionTLS13)
	cache := tlscache.New(noByteBudget(&tlscache.Options{MaxSessions: -1}))
	if err := adapter.NewServer(cache, nil).Install(cfg); err != nil {
		panic(err)
	}
	cs := tls.ConnectionState{Version: tls.VersionTLS13, ServerName: serverName}
	cfg.WrapSession(cs, ss) // the server name's context is derived once, before
	cache.FlushAll()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := cfg.WrapSession(cs, ss); err != nil {
			panic(err)
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if cache.Len() != n {
		panic("sessions missing")
	}
	runtime.KeepAlive(cache)
	runtime.KeepAlive(cfg)
	state, err := ss.Bytes()
	if err != nil {
		panic(err)
	}
	return memResult{
		sessions:   n,
		perSession: float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n),
		state:      len(state),
	}
}
