// Package testhello builds raw TLS 1.3 ClientHellos for tests that need what
// crypto/tls's client never sends: several PSK identities of any size, any
// server name.
package testhello

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
)

// Hello describes a ClientHello.
type Hello struct {
	ServerName string   // the SNI extension; empty: none
	Identities [][]byte // PSK identities, each with a 32-byte junk binder; none: no pre_shared_key
}

// Records returns the ClientHello as TLS records of at most 16 KiB, ready to
// write to a server's connection. Its key share is a real X25519 key, so a
// server that finds no PSK to resume continues with a full handshake.
func (h Hello) Records() []byte {
	msg := h.message()
	var out []byte
	for len(msg) > 0 {
		n := min(len(msg), 1<<14)
		out = append(out, 0x16, 0x03, 0x01, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func (h Hello) message() []byte {
	var body []byte
	body = append(body, 0x03, 0x03) // legacy_version
	body = append(body, random(32)...)
	body = append(body, 32)
	body = append(body, random(32)...)                            // legacy_session_id
	body = append(body, 0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03) // cipher suites
	body = append(body, 1, 0)                                     // compression: null

	var ext []byte
	if h.ServerName != "" {
		name := []byte(h.ServerName)
		list := append([]byte{0}, u16(len(name))...)
		list = append(list, name...)
		ext = extension(ext, 0, append(u16(len(list)), list...))
	}
	ext = extension(ext, 10, []byte{0, 2, 0x00, 0x1d})                         // supported_groups: x25519
	ext = extension(ext, 13, []byte{0, 6, 0x04, 0x03, 0x08, 0x04, 0x08, 0x07}) // signature_algorithms
	ext = extension(ext, 43, []byte{2, 0x03, 0x04})                            // supported_versions: TLS 1.3
	ext = extension(ext, 45, []byte{1, 1})                                     // psk_key_exchange_modes: psk_dhe_ke
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	share := append([]byte{0x00, 0x1d}, u16(32)...)
	share = append(share, key.PublicKey().Bytes()...)
	ext = extension(ext, 51, append(u16(len(share)), share...)) // key_share
	if len(h.Identities) > 0 {
		var ids, binders []byte
		for _, id := range h.Identities {
			ids = append(ids, u16(len(id))...)
			ids = append(ids, id...)
			ids = append(ids, 0, 0, 0, 0) // obfuscated_ticket_age
			binders = append(binders, 32)
			binders = append(binders, make([]byte, 32)...)
		}
		psk := append(u16(len(ids)), ids...)
		psk = append(psk, u16(len(binders))...)
		psk = append(psk, binders...)
		ext = extension(ext, 41, psk) // pre_shared_key, last
	}
	body = append(body, u16(len(ext))...)
	body = append(body, ext...)

	msg := []byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

func extension(b []byte, typ uint16, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = append(b, u16(len(data))...)
	return append(b, data...)
}

func u16(n int) []byte { return []byte{byte(n >> 8), byte(n)} }

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
