package tlscache

import (
	"encoding/binary"
	"fmt"
)

// check verifies the table's invariants: every live entry is in the index,
// in its heap at its index, in heap order, with its record in its arena;
// the counts and charged bytes add up.
func (c *Cache) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.t
	n, nProbe := 0, 0
	var bytesSum, probeSum int64
	live := make([]int, segCount)
	for i := range t.ents {
		e := &t.ents[i]
		if e.flags&flagLive == 0 {
			continue
		}
		n++
		ch := t.charged(e)
		bytesSum += ch
		w := which(e)
		if w == orderProbe {
			nProbe++
			probeSum += ch
		}
		if h := t.orders[w].heap; e.queue == 0 && (int(e.pos) >= len(h) || h[e.pos] != int32(i)) {
			return fmt.Errorf("slot %d not at its heap index %d", i, e.pos)
		}
		if j := t.find(t.id(e)); j != int32(i) {
			return fmt.Errorf("slot %d found as %d", i, j)
		}
		rec := t.record(e)
		if binary.LittleEndian.Uint32(rec) != uint32(i) {
			return fmt.Errorf("slot %d: record names slot %d", i, binary.LittleEndian.Uint32(rec))
		}
		live[e.seg] += len(rec)
		if s := t.objs[int32(i)]; (s != nil) != (e.flags&flagObj != 0) {
			return fmt.Errorf("slot %d: side table and flag disagree", i)
		}
	}
	if n != t.n || nProbe != t.nProbe || bytesSum != t.bytes || probeSum != t.probeBytes {
		return fmt.Errorf("counts: %d/%d probe %d/%d bytes %d/%d probe bytes %d/%d",
			n, t.n, nProbe, t.nProbe, bytesSum, t.bytes, probeSum, t.probeBytes)
	}
	ordered := 0
	for w := range t.orders {
		o := &t.orders[w]
		h := o.heap
		ordered += len(h)
		for i := 1; i < len(h); i++ {
			if t.less(h[i], h[(i-1)/2]) {
				return fmt.Errorf("order %d: heap order broken at %d", w, i)
			}
		}
		for k, q := range o.queues {
			prev := noSlot
			for i := q.head; i != noSlot; prev, i = i, t.ents[i].next {
				e := &t.ents[i]
				ordered++
				if e.flags&flagLive == 0 || which(e) != w || int(e.queue) != k+1 || e.pos != prev || e.timeout != q.timeout {
					return fmt.Errorf("order %d queue %d: slot %d misplaced", w, k, i)
				}
				if prev != noSlot && t.less(i, prev) {
					return fmt.Errorf("order %d queue %d: slot %d expires before the one ahead of it", w, k, i)
				}
			}
			if q.tail != prev {
				return fmt.Errorf("order %d queue %d: tail %d, last %d", w, k, q.tail, prev)
			}
		}
	}
	if ordered != n || len(t.objs) > n {
		return fmt.Errorf("%d sessions in the orders, side table %d, for %d sessions", ordered, len(t.objs), n)
	}
	for si := range t.segs {
		if live[si] != t.segs[si].live {
			return fmt.Errorf("arena %d: live %d, counted %d", si, live[si], t.segs[si].live)
		}
	}
	return nil
}
