package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Heartbeat timing of [Store.Watch] and [Store.WatchLive]. Every
// [HeartbeatInterval] the watch publishes a heartbeat on a channel of its
// own, through the client's ordinary connections, and receives it on its
// subscription: hearing it proves both that publishes go through and that
// the subscription delivers (fleet.Tier stops trusting a watch that has not
// heard it for fleet.Silence). A subscription not confirmed, or that has not
// delivered a heartbeat, for silentAfter is taken for dead (silently dropped
// by a NAT, a load balancer or a partition; a PING would not tell, as a
// connection that lost its subscription still answers it) and replaced.
// While Redis refuses writes (CLIENT PAUSE WRITE) that means a new
// subscription every silentAfter.
const (
	HeartbeatInterval = 100 * time.Millisecond
	silentAfter       = 600 * time.Millisecond
	// heartbeatTimeout bounds one heartbeat's PUBLISH: longer than the
	// interval, so that a busy host's slow round trips still count (the
	// next tick waits), shorter than fleet.Silence.
	heartbeatTimeout = 300 * time.Millisecond
)

// Watch implements tlscache.Watcher with SUBSCRIBE on the channel. go-redis
// reconnects and subscribes again after a broken connection; a connection
// that goes silent is replaced within silentAfter (0.6 s). Each confirmed
// subscription calls lost. While Redis is unreachable Watch retries with a
// growing pause, up to a second. On a Redis Cluster it subscribes on one
// node, any node, and moves to another when that one fails or goes silent;
// through a Sentinel failover client, on the master and on each of its
// replicas (see sentinel.go).
func (s *Store) Watch(ctx context.Context, deleted func(key string), lost func()) error {
	return s.WatchLive(ctx, deleted, lost, nil)
}

// WatchLive is [Store.Watch] that also calls alive each time the watch
// receives its own heartbeat (see [HeartbeatInterval]); it implements
// fleet.LiveWatcher. alive may be called from several goroutines at once
// (Sentinel).
func (s *Store) WatchLive(ctx context.Context, deleted func(message string), synced func(), alive func()) error {
	b := make([]byte, 8)
	rand.Read(b)
	hb := s.prefix + "alive:" + hex.EncodeToString(b)
	w := watch{hb: hb, deleted: deleted, synced: synced, alive: alive}
	if s.cluster != nil {
		// The heartbeat goes through the node the watch listens on: what
		// it proves is that this node delivers, and a dead master
		// elsewhere does not silence it.
		w.perNode = true
		return s.watchCluster(ctx, w)
	}
	beats, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.heartbeat(beats, s.c, hb)
	if fc, ok := isFailover(s.c); ok {
		return s.watchFailover(ctx, fc, w)
	}
	for {
		s.subscribe(ctx, s.c, w, false)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// watch is what a subscription reports to.
type watch struct {
	hb      string // this watch's heartbeat channel
	deleted func(message string)
	synced  func() // may be nil
	alive   func() // may be nil
	perNode bool   // each subscription publishes its own heartbeat
}

// subscriber is a client that subscribes: the store's, or one node's.
type subscriber interface {
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
	Publish(ctx context.Context, channel string, message any) *redis.IntCmd
}

// subscribe runs one subscription on c until ctx is done or it goes
// silent, and with leave, until it fails; it reports whether a
// subscription was confirmed.
func (s *Store) subscribe(ctx context.Context, c subscriber, w watch, leave bool) (confirmed bool) {
	ps := c.Subscribe(ctx, s.channel, w.hb)
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	if w.perNode {
		beats, cancel := context.WithCancel(ctx)
		defer cancel()
		go s.heartbeat(beats, c, w.hb)
	}
	pause := 10 * time.Millisecond
	heard := time.Now() // of the last confirmation or heartbeat
	for {
		msg, err := ps.ReceiveTimeout(ctx, HeartbeatInterval)
		if ctx.Err() != nil {
			return confirmed
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if time.Since(heard) > silentAfter {
				return confirmed // silent
			}
			continue
		case err != nil && leave:
			return confirmed
		case err != nil:
			if sleep(ctx, pause) != nil {
				return confirmed
			}
			pause = min(2*pause, time.Second)
			heard = time.Now()
			continue
		}
		pause = 10 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				confirmed, heard = true, time.Now()
				if w.synced != nil {
					w.synced()
				}
			}
		case *redis.Message:
			switch m.Channel {
			case s.channel:
				w.deleted(m.Payload)
			case w.hb:
				heard = time.Now()
				if w.alive != nil {
					w.alive()
				}
			}
		}
	}
}

// heartbeat publishes on hb through c every HeartbeatInterval until ctx is
// done.
func (s *Store) heartbeat(ctx context.Context, c subscriber, hb string) {
	tick := time.NewTicker(HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		c.Publish(pctx, hb, "")
		cancel()
	}
}
