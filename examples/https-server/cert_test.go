package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// With -state and no -cert, a restart serves the same self-signed
// certificate, kept in a file only its owner reads.
func TestSelfSignedKept(t *testing.T) {
	keep := filepath.Join(t.TempDir(), "state.cert")
	first, err := loadOrGenerate("", "", keep)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keep)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept certificate: %v, %v", fi, err)
	}
	again, err := loadOrGenerate("", "", keep)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Certificate[0], again.Certificate[0]) {
		t.Error("a restart made a new certificate")
	}
	other, err := loadOrGenerate("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.Certificate[0], other.Certificate[0]) {
		t.Error("without -state the certificate was reused")
	}
	// A file that is not a certificate is replaced by a new one.
	os.WriteFile(keep, []byte("junk"), 0o600)
	if c, err := loadOrGenerate("", "", keep); err != nil || bytes.Equal(c.Certificate[0], first.Certificate[0]) {
		t.Errorf("junk file: %v", err)
	}
}
