package fleet_test

import (
	"context"
	"fmt"

	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// Two servers share one store: in production a redisstore.Store on one
// Redis, here the in-memory store. A session created on A resumes on B; A
// revokes it, and B drops the copy in its internal tier.
func Example() {
	store := tlscache.NewMemoryStore(0, nil)
	keys := []fleet.Key{fleet.GenerateKey()} // in production: fleet.ParseKeys of a shared secret file

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	member := func() *tlscache.Cache {
		tier, err := fleet.New(store, &fleet.Options{Keys: keys})
		if err != nil {
			panic(err)
		}
		cache := tlscache.New(tier.Hooks(&tlscache.Options{Mode: tlscache.Server}))
		go tier.Watch(ctx, cache) // until ctx is done
		<-tier.Ready()
		return cache
	}
	a, b := member(), member()

	s := &tlscache.Session{ID: []byte("ticket-1"), IDContext: []byte("vhost"), State: []byte("secret")}
	a.NewSession(tlscache.Server, s) // what a handshake on A does
	fmt.Println("resumes on B:", b.Lookup(s.ID, s.IDContext) != nil)
	fmt.Println("B holds it:", b.Peek(s.ID) != nil)

	a.RemoveID(s.ID) // revocation on A
	fmt.Println("B holds it after A's revocation:", b.Peek(s.ID) != nil)
	fmt.Println("resumes on B:", b.Lookup(s.ID, s.IDContext) != nil)
	// Output:
	// resumes on B: true
	// B holds it: true
	// B holds it after A's revocation: false
	// resumes on B: false
}
