package main

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipe returns the two ends of an in-memory connection. Unlike net.Pipe its
// writes are buffered and never wait for the reader, as a socket's: a TLS
// server writes its whole flight (tickets included) while the client reads
// it record by record, and net.Pipe would deadlock or serialize that.
func pipe() (net.Conn, net.Conn) {
	a, b := newHalf(), newHalf()
	return &pipeConn{r: a, w: b}, &pipeConn{r: b, w: a}
}

type half struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	closed bool
}

func newHalf() *half {
	h := &half{}
	h.cond.L = &h.mu
	return h
}

type pipeConn struct{ r, w *half }

func (c *pipeConn) Read(p []byte) (int, error) {
	h := c.r
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) == 0 && !h.closed {
		h.cond.Wait()
	}
	if len(h.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	return n, nil
}

func (c *pipeConn) Write(p []byte) (int, error) {
	h := c.w
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, io.ErrClosedPipe
	}
	h.buf = append(h.buf, p...)
	h.cond.Signal()
	return len(p), nil
}

// Close closes both directions: the peer reads EOF after what was written.
func (c *pipeConn) Close() error {
	for _, h := range []*half{c.r, c.w} {
		h.mu.Lock()
		h.closed = true
		h.cond.Broadcast()
		h.mu.Unlock()
	}
	return nil
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func (c *pipeConn) LocalAddr() net.Addr                { return pipeAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr               { return pipeAddr{} }
func (c *pipeConn) SetDeadline(t time.Time) error      { return c.deadline(t) }
func (c *pipeConn) SetReadDeadline(t time.Time) error  { return c.deadline(t) }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return c.deadline(t) }

func (c *pipeConn) deadline(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	return os.ErrNoDeadline
}
