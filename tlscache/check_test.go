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
		if w == heapProbe {
			nProbe++
			probeSum += ch
		}
		if h := t.heaps[w]; int(e.heapIdx) >= len(h) || h[e.heapIdx] != int32(i) {
			return fmt.Errorf("slot %d not at its heap index %d", i, e.heapIdx)
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
	if len(t.heaps[0])+len(t.heaps[1]) != n || len(t.objs) > n {
		return fmt.Errorf("heaps %d+%d, side table %d, for %d sessions", len(t.heaps[0]), len(t.heaps[1]), len(t.objs), n)
	}
	for w, h := range t.heaps {
		for i := 1; i < len(h); i++ {
			if t.less(h[i], h[(i-1)/2]) {
				return fmt.Errorf("heap %d order broken at %d", w, i)
			}
		}
	}
	for si := range t.segs {
		if live[si] != t.segs[si].live {
			return fmt.Errorf("arena %d: live %d, counted %d", si, live[si], t.segs[si].live)
		}
	}
	return nil
}
