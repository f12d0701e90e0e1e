package tlscache

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
)

// The cache's storage holds nothing the garbage collector has to scan per
// session: an index from a seeded hash of the ID to a slot, fixed-size
// entries without pointers, two expiry orders of slot numbers (order.go), and the IDs
// and states in a few byte arenas. Only sessions that carry a Value or were
// added by hand keep their *Session, in a side table, because the API hands
// that very object back (Peek, Lookup, the hooks). Contexts, which few
// sessions share many times over, are interned.
//
// An arena record is a header (slot, length) followed by the ID and, for
// sessions without an object, the state. A removed record becomes garbage;
// an arena is compacted when it has to grow anyway or when most of it is
// garbage, walking its records in order, into a buffer half as large again
// as its live records: each compaction costs the arena's size and happens
// only after a third of it was written again.

const (
	segCount     = 16   // arenas; a compaction copies one of them
	segMin       = 4096 // smallest arena worth allocating
	recHeader    = 8    // slot and record length
	noSlot       = int32(-1)
	flagLive     = 1 << 0
	flagProbe    = 1 << 1 // probationary: issued by a handshake not known to have completed
	flagObj      = 1 << 2 // the *Session is in the side table
	orderProtect = 0
	orderProbe   = 1
	sessionBytes = 96 // what a session costs beyond its record (see charge)
)

// entry is one cached session. It has no pointers.
type entry struct {
	hash    uint64
	created int64 // unix nanoseconds
	timeout int64 // nanoseconds
	seq     uint64
	off     uint32 // of the record in its arena
	idLen   uint32
	stLen   uint32 // length of the state, in the record unless flagObj (then what is charged: see Session.stateCost)
	ctx     uint32 // interned context, 0 for none
	pos     int32  // in a queue: the previous slot; in the heap: the index there
	next    int32  // in a queue: the next slot; free: the next free slot
	gen     uint32
	seg     uint8
	flags   uint8
	queue   uint8 // 1+ the queue it is in, 0 for the heap
}

func (e *entry) exp() int64 { return satAdd(e.created, e.timeout) }

type segment struct {
	buf  []byte // len is what is written
	live int    // bytes of live records
}

// table is the storage; Cache.mu guards it.
type table struct {
	seed   maphash.Seed
	index  []uint64 // open addressing by the ID's hash, linear probing: tag<<32 | slot+1, 0 for empty
	ents   []entry
	free   int32    // first free slot, noSlot for none
	orders [2]order // expiry order of protected and probationary slots
	segs   [segCount]segment
	objs   map[int32]*Session // side table
	ctxs   interned
	bytes  int64 // charged bytes of the cached sessions
	seq    uint64
	n      int

	nProbe     int   // probationary sessions
	probeBytes int64 // their charged bytes

	// gen numbers every insert, across resets too, so that a copy handed
	// out before a FlushAll never stands for a session cached after it.
	gen uint32
}

func (t *table) init() {
	t.seed = maphash.MakeSeed()
	t.reset()
}

func (t *table) reset() {
	t.index = make([]uint64, 64)
	t.ents = nil
	t.free = noSlot
	t.orders = [2]order{}
	t.segs = [segCount]segment{}
	t.objs = make(map[int32]*Session)
	t.ctxs = interned{}
	t.bytes, t.n = 0, 0
	t.nProbe, t.probeBytes = 0, 0
}

// find returns the slot holding id, or noSlot.
func (t *table) find(id []byte) int32 {
	h := maphash.Bytes(t.seed, id)
	mask := uint64(len(t.index) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		v := t.index[p]
		if v == 0 {
			return noSlot
		}
		if v>>32 != h>>32 {
			continue // another hash: no need to look at its entry
		}
		if i := int32(uint32(v)) - 1; bytes.Equal(t.id(&t.ents[i]), id) {
			return i
		}
	}
}

// place puts slot i in the index.
func (t *table) place(i int32) {
	h := t.ents[i].hash
	mask := uint64(len(t.index) - 1)
	p := h & mask
	for t.index[p] != 0 {
		p = (p + 1) & mask
	}
	t.index[p] = h>>32<<32 | uint64(i+1)
}

// unplace takes slot i out of the index, shifting back the entries that
// probed past it.
func (t *table) unplace(i int32) {
	mask := uint64(len(t.index) - 1)
	p := t.ents[i].hash & mask
	for uint32(t.index[p]) != uint32(i+1) {
		p = (p + 1) & mask
	}
	for q := p; ; {
		q = (q + 1) & mask
		v := t.index[q]
		if v == 0 {
			break
		}
		// v stays unless its home is cyclically outside (p, q].
		home := t.ents[uint32(v)-1].hash & mask
		if (q > p && (home <= p || home > q)) || (q < p && home <= p && home > q) {
			t.index[p] = v
			p = q
		}
	}
	t.index[p] = 0
}

// resize rebuilds the index with size places (a power of two).
func (t *table) resize(size int) {
	t.index = make([]uint64, size)
	for i := range t.ents {
		if t.ents[i].flags&flagLive != 0 {
			t.place(int32(i))
		}
	}
}

func (t *table) record(e *entry) []byte {
	b := t.segs[e.seg].buf[e.off:]
	n := binary.LittleEndian.Uint32(b[4:])
	return b[:n:n]
}

func (t *table) id(e *entry) []byte    { return t.record(e)[recHeader : recHeader+e.idLen] }
func (t *table) state(e *entry) []byte { return t.record(e)[recHeader+e.idLen:] }

func (t *table) charged(e *entry) int64 {
	return charge(int(e.idLen), len(t.ctxs.get(e.ctx)), int(e.stLen))
}

// charge is what a session costs against Options.MaxBytes: its record, with
// the arenas' slack, and its entry, index and heap places with theirs.
func charge(id, ctx, state int) int64 { return int64(recHeader+id+ctx+state)*3/2 + sessionBytes }

// insert stores a session and returns its slot. obj is kept in the side
// table when not nil, and then state is not copied.
func (t *table) insert(id, ctx, state []byte, obj *Session, created, timeout int64, probe bool) int32 {
	i := t.free
	if i == noSlot {
		t.ents = append(t.ents, entry{})
		i = int32(len(t.ents) - 1)
	} else {
		t.free = t.ents[i].next
	}
	e := &t.ents[i]
	t.gen++
	gen := t.gen
	if gen == 0 { // 0 is what a Session that was never cached holds
		t.gen++
		gen = t.gen
	}
	h := maphash.Bytes(t.seed, id)
	stLen := len(state)
	if obj != nil {
		stLen = obj.stateCost() // its ValueSize when it is kept as a Value alone
	}
	*e = entry{hash: h, created: created, timeout: timeout, gen: gen, idLen: uint32(len(id)), stLen: uint32(stLen), next: noSlot}
	if 4*(t.n+1) > 3*len(t.index) {
		t.resize(2 * len(t.index))
	}
	charged := charge(len(id), len(ctx), stLen)
	if obj != nil {
		e.flags |= flagObj
		t.objs[i] = obj
		state = nil
	}
	e.ctx = t.ctxs.ref(ctx)
	e.seg = uint8(h >> 60)
	n := recHeader + len(id) + len(state)
	e.off = t.alloc(e.seg, n)
	e.flags |= flagLive
	rec := t.segs[e.seg].buf[e.off : int(e.off)+n]
	binary.LittleEndian.PutUint32(rec, uint32(i))
	binary.LittleEndian.PutUint32(rec[4:], uint32(len(rec)))
	copy(rec[recHeader:], id)
	copy(rec[recHeader+len(id):], state)
	t.place(i)
	t.seq++
	e.seq = t.seq
	which := orderProtect
	if probe {
		e.flags |= flagProbe
		which = orderProbe
		t.nProbe++
		t.probeBytes += charged
	}
	t.orderInsert(which, i)
	t.bytes += charged
	t.n++
	return i
}

// obj returns slot i's object, or nil.
func (t *table) obj(i int32) *Session {
	if t.ents[i].flags&flagObj == 0 {
		return nil
	}
	return t.objs[i]
}

// remove frees slot i.
func (t *table) remove(i int32) {
	e := &t.ents[i]
	charged := t.charged(e)
	t.bytes -= charged
	t.n--
	if e.flags&flagProbe != 0 {
		t.nProbe--
		t.probeBytes -= charged
	}
	t.orderRemove(i)
	t.unplace(i)
	t.ctxs.unref(e.ctx)
	delete(t.objs, i)
	rec := t.record(e)
	clear(rec[recHeader:]) // the state holds a secret: do not leave it in the arena
	seg, n := e.seg, len(rec)
	*e = entry{gen: e.gen, next: t.free}
	t.free = i
	t.release(seg, n)
	if len(t.index) > 1024 && 8*t.n < len(t.index) {
		t.resize(len(t.index) / 2)
	}
}

// alloc reserves n bytes in arena si and returns their offset.
func (t *table) alloc(si uint8, n int) uint32 {
	g := &t.segs[si]
	if len(g.buf)+n > cap(g.buf) {
		t.compact(si, max(segMin, (g.live+n)*3/2))
	}
	off := len(g.buf)
	g.buf = g.buf[:off+n]
	g.live += n
	return uint32(off)
}

// release turns n bytes of arena si into garbage, shrinking an arena that
// is mostly garbage.
func (t *table) release(si uint8, n int) {
	g := &t.segs[si]
	g.live -= n
	if c := cap(g.buf); c > 4*segMin && g.live < c/4 {
		t.compact(si, max(segMin, g.live*2))
	}
}

// compact copies arena si's live records into a new buffer of capacity
// size, updating their entries.
func (t *table) compact(si uint8, size int) {
	g := &t.segs[si]
	nb := make([]byte, 0, size)
	for off := 0; off < len(g.buf); {
		slot := int32(binary.LittleEndian.Uint32(g.buf[off:]))
		n := int(binary.LittleEndian.Uint32(g.buf[off+4:]))
		if int(slot) < len(t.ents) {
			if e := &t.ents[slot]; e.flags&flagLive != 0 && e.seg == si && int(e.off) == off {
				e.off = uint32(len(nb))
				nb = append(nb, g.buf[off:off+n]...)
			}
		}
		off += n
	}
	g.buf = nb
}

// interned holds the distinct contexts of cached sessions, each once.
type interned struct {
	ids  map[string]uint32
	list []internedCtx // index id-1
	free []uint32
}

type internedCtx struct {
	b    string
	refs int
}

// ref returns ctx's id, taking a reference; the empty context is 0.
func (c *interned) ref(ctx []byte) uint32 {
	if len(ctx) == 0 {
		return 0
	}
	if id, ok := c.ids[string(ctx)]; ok {
		c.list[id-1].refs++
		return id
	}
	if c.ids == nil {
		c.ids = make(map[string]uint32)
	}
	var id uint32
	if n := len(c.free); n > 0 {
		id = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		c.list = append(c.list, internedCtx{})
		id = uint32(len(c.list))
	}
	c.list[id-1] = internedCtx{b: string(ctx), refs: 1}
	c.ids[string(ctx)] = id
	return id
}

func (c *interned) get(id uint32) string {
	if id == 0 {
		return ""
	}
	return c.list[id-1].b
}

func (c *interned) unref(id uint32) {
	if id == 0 {
		return
	}
	p := &c.list[id-1]
	if p.refs--; p.refs == 0 {
		delete(c.ids, p.b)
		*p = internedCtx{}
		c.free = append(c.free, id)
	}
}
