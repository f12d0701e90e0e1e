package tlscache

// order keeps slots in expiry order (ties: insertion order), for eviction
// and flushes. Most sessions share a timeout and arrive in the order of
// their creation, so that their expiry order is their arrival order: such
// sessions go to a FIFO queue per timeout, kept as a doubly linked list of
// slots, where adding, removing and finding the first take O(1). The few
// queues' heads and a binary heap for the rest (a session created before
// the last of its queue, say from a shared store, or one whose times were
// changed) give the first to evict.
type order struct {
	queues []queue
	heap   []int32
}

type queue struct {
	timeout    int64
	head, tail int32
}

// maxQueues bounds the queues; sessions of further timeouts go to the heap.
const maxQueues = 4

func (t *table) less(a, b int32) bool {
	x, y := &t.ents[a], &t.ents[b]
	ex, ey := x.exp(), y.exp()
	return ex < ey || (ex == ey && x.seq < y.seq)
}

func which(e *entry) int {
	if e.flags&flagProbe != 0 {
		return orderProbe
	}
	return orderProtect
}

// orderInsert puts slot i in order w.
func (t *table) orderInsert(w int, i int32) {
	o := &t.orders[w]
	e := &t.ents[i]
	for k := range o.queues {
		q := &o.queues[k]
		if q.timeout != e.timeout {
			continue
		}
		if q.tail != noSlot && !t.less(q.tail, i) {
			break // out of order (a re-inserted session, say): the heap
		}
		e.queue, e.pos, e.next = uint8(k+1), q.tail, noSlot
		if q.tail == noSlot {
			q.head = i
		} else {
			t.ents[q.tail].next = i
		}
		q.tail = i
		return
	}
	if len(o.queues) < maxQueues && !o.hasQueue(e.timeout) {
		o.queues = append(o.queues, queue{timeout: e.timeout, head: noSlot, tail: noSlot})
		t.orderInsert(w, i)
		return
	}
	e.queue = 0
	t.push(w, i)
}

func (o *order) hasQueue(timeout int64) bool {
	for _, q := range o.queues {
		if q.timeout == timeout {
			return true
		}
	}
	return false
}

// orderRemove takes slot i out of its order.
func (t *table) orderRemove(i int32) {
	e := &t.ents[i]
	o := &t.orders[which(e)]
	if e.queue == 0 {
		t.heapRemove(o, e)
		return
	}
	q := &o.queues[e.queue-1]
	if e.pos == noSlot {
		q.head = e.next
	} else {
		t.ents[e.pos].next = e.next
	}
	if e.next == noSlot {
		q.tail = e.pos
	} else {
		t.ents[e.next].pos = e.pos
	}
	e.queue, e.pos, e.next = 0, noSlot, noSlot
}

// fixSlot restores the order after slot i's expiry changed.
func (t *table) fixSlot(i int32) {
	t.orderRemove(i)
	t.orderInsert(which(&t.ents[i]), i)
}

// root returns the slot that expires first in order w, or noSlot.
func (t *table) root(w int) int32 { return t.rootExcept(w, noSlot) }

// rootExcept returns the slot that expires first in order w other than
// keep, or noSlot.
func (t *table) rootExcept(w int, keep int32) int32 {
	o := &t.orders[w]
	best := noSlot
	consider := func(i int32) {
		if i != noSlot && (best == noSlot || t.less(i, best)) {
			best = i
		}
	}
	for _, q := range o.queues {
		i := q.head
		if i == keep && i != noSlot {
			i = t.ents[i].next
		}
		consider(i)
	}
	h := o.heap
	switch {
	case len(h) == 0:
	case h[0] != keep:
		consider(h[0])
	case len(h) == 2 || (len(h) > 2 && t.less(h[1], h[2])):
		consider(h[1])
	case len(h) > 2:
		consider(h[2])
	}
	return best
}

// promote moves slot i from the probationary to the protected order.
func (t *table) promote(i int32) {
	e := &t.ents[i]
	if e.flags&flagProbe == 0 {
		return
	}
	t.orderRemove(i)
	e.flags &^= flagProbe
	t.nProbe--
	t.probeBytes -= t.charged(e)
	t.orderInsert(orderProtect, i)
}

// The heap: a binary min-heap of slots; each entry keeps its index (pos).

func (t *table) push(w int, i int32) {
	o := &t.orders[w]
	t.ents[i].pos = int32(len(o.heap))
	o.heap = append(o.heap, i)
	t.up(o, len(o.heap)-1)
}

func (t *table) heapRemove(o *order, e *entry) {
	i, n := int(e.pos), len(o.heap)-1
	if i != n {
		t.swap(o, i, n)
	}
	o.heap = o.heap[:n]
	if i != n && !t.down(o, i) {
		t.up(o, i)
	}
	if c := cap(o.heap); c > 1024 && n < c/4 {
		o.heap = append(make([]int32, 0, 2*n), o.heap...)
	}
	e.pos = noSlot
}

func (t *table) swap(o *order, i, j int) {
	h := o.heap
	h[i], h[j] = h[j], h[i]
	t.ents[h[i]].pos = int32(i)
	t.ents[h[j]].pos = int32(j)
}

func (t *table) up(o *order, j int) {
	h := o.heap
	for j > 0 {
		i := (j - 1) / 2
		if !t.less(h[j], h[i]) {
			break
		}
		t.swap(o, i, j)
		j = i
	}
}

func (t *table) down(o *order, i0 int) bool {
	h := o.heap
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && t.less(h[r], h[j]) {
			j = r
		}
		if !t.less(h[j], h[i]) {
			break
		}
		t.swap(o, i, j)
		i = j
	}
	return i > i0
}
