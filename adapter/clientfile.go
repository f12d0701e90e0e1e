package adapter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"github.com/tlscache/tlscache/internal/atomicfile"
	"github.com/tlscache/tlscache/tlscache"
)

// clientFile is where a ClientCache opened with OpenClientCache keeps its
// sessions.
type clientFile struct {
	path  string
	mu    sync.Mutex  // held by the one writer
	dirty atomic.Bool // a change not written yet
}

// OpenClientCache returns a [ClientCache] whose sessions persist in the file
// at path, as autocert.DirCache keeps certificates: the sessions saved
// there are loaded now (expired ones dropped), and every change a
// handshake makes (a ticket received, a session deleted or, with
// [ClientOptions.SingleUse], taken) rewrites the file. The file is replaced
// atomically (a temporary file in the same directory, renamed over it) and
// has mode 0600: it holds the sessions' secrets. A process that restarts, or
// crashes, resumes with the sessions it had. Changes are not synced to disk
// one by one: a crash of the machine (not of the process) can lose the
// latest.
//
// It writes the file once before returning (the expired sessions dropped),
// so that a path it cannot write is an error now, not sessions silently
// lost later. A missing file is an empty cache. A file that is not a valid
// [ClientCache.ExportAll] output gives an error wrapping
// [ErrInvalidExport], and the file is left as it is. cache and opts are as
// for [NewClientCache]. A write that fails never fails a handshake (the next
// change tries again); [ClientCache.Save] writes now and returns its error.
func OpenClientCache(path string, cache *tlscache.Cache, opts *ClientOptions) (*ClientCache, error) {
	cc := NewClientCache(cache, opts)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("tlscache/adapter: session file: %w", err)
	default:
		if _, err := cc.ImportAll(b); err != nil {
			return nil, fmt.Errorf("tlscache/adapter: session file %s: %w", path, err)
		}
	}
	cc.file = &clientFile{path: path}
	if err := cc.Save(); err != nil {
		// Now rather than never: every later write would fail as silently.
		return nil, fmt.Errorf("%w (the file is written on every new ticket)", err)
	}
	return cc, nil
}

// Save writes the cache's sessions to its file now and syncs it to disk; a
// cache that [OpenClientCache] did not return has no file, and Save does
// nothing. It returns the error of this write, or nil.
func (cc *ClientCache) Save() error {
	f := cc.file
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirty.Store(false)
	return cc.write(true)
}

// changed records a change and writes the file unless another goroutine is
// writing it, in which case that one writes again after it.
func (cc *ClientCache) changed() {
	f := cc.file
	if f == nil {
		return
	}
	f.dirty.Store(true)
	for f.dirty.Load() && f.mu.TryLock() {
		for f.dirty.Swap(false) {
			cc.write(false) // failed: the next change tries again
		}
		f.mu.Unlock()
	}
}

// write replaces the file with the cache's sessions, with f.mu held.
func (cc *ClientCache) write(sync bool) error {
	b, err := cc.ExportAll()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(cc.file.path, b, sync); err != nil {
		return fmt.Errorf("tlscache/adapter: session file: %w", err)
	}
	return nil
}
