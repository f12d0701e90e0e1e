package tlscache

// expiryHeap is a binary min-heap of cached sessions ordered by expiry, ties
// broken by insertion order: its root is the session to evict first. Each
// session keeps its index, so removal and re-ordering are O(log n).
type expiryHeap []*Session

func (h expiryHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	return a.exp < b.exp || (a.exp == b.exp && a.seq < b.seq)
}

func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *expiryHeap) push(s *Session) {
	s.idx = len(*h)
	*h = append(*h, s)
	h.up(s.idx)
}

// remove takes out the session at index i.
func (h *expiryHeap) remove(i int) {
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
	}
	old[n] = nil // do not keep the session (and its secret) reachable
	*h = old[:n]
	if i != n {
		h.fix(i)
	}
}

// fix restores the order after the session at index i changed its expiry.
func (h expiryHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h expiryHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h expiryHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
