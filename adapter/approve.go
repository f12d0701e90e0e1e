package adapter

import "github.com/tlscache/tlscache/tlscache"

// Approve calls approve with every session of the connection: the one it
// resumed from and those it issued, at once, and each session the
// connection issues later, as it is issued. Over QUIC the server issues its
// ticket after the handshake, which may be after the handler of a request
// (a 0-RTT one, or a 1-RTT one that raced the ticket) ran: a login that
// approves with Approve rather than All still approves that ticket. approve
// runs without the record's lock, possibly in a handshake's goroutine; it
// sees each session once. A typical approve is cache.Add, plus
// fleet.Tier.Put across a fleet. On a nil record (an untracked
// connection) it approves nothing.
func (c *ConnSessions) Approve(approve func(*tlscache.Session)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.approvers = append(c.approvers, approve)
	now := c.allLocked() // under the same lock: each session once
	c.mu.Unlock()
	for _, s := range now {
		approve(s)
	}
}
