// Package atomicfile replaces files atomically: the session files of the
// adapter's client cache and of the fleet's saved sessions.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces the file at path with b: a temporary file in the same
// directory, mode 0600 (the files hold secrets), renamed over path, so a
// reader sees the old file or the new one, never part of one. With sync
// the data reaches the disk before the rename.
func Write(path string, b []byte, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a failure; gone already after the rename
	_, err = tmp.Write(b)
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}
