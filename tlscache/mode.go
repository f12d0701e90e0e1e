package tlscache

import (
	"fmt"
	"strconv"
	"strings"
)

// Mode selects what the cache does automatically. The values are those of
// OpenSSL's SSL_SESS_CACHE_* flags, so a mode read from an OpenSSL
// configuration means the same thing here.
type Mode uint32

const (
	// Off stores nothing automatically and calls no new hook. Lookups still
	// run: a session added by hand still resumes.
	Off Mode = 0x000
	// Client stores sessions created by client handshakes (unless
	// [NoInternalStore]) and passes them to the new hook.
	Client Mode = 0x001
	// Server does the same for server handshakes. It is the default mode.
	Server Mode = 0x002
	// Both is [Client] | [Server].
	Both Mode = Client | Server
	// NoAutoClear turns off the expiry sweep that otherwise runs every 255
	// completed handshakes.
	NoAutoClear Mode = 0x080
	// NoInternalLookup makes lookups skip the internal cache and go straight
	// to the get hook. No miss is counted for the skipped internal lookup.
	NoInternalLookup Mode = 0x100
	// NoInternalStore keeps handshakes from adding sessions to the internal
	// cache and keeps get-hook results from being copied into it. The new
	// hook still fires and [Cache.Add] still works: this is controlled
	// resumption.
	NoInternalStore Mode = 0x200
	// NoInternal is [NoInternalLookup] | [NoInternalStore]: an external cache
	// alone.
	NoInternal Mode = NoInternalLookup | NoInternalStore
	// UpdateTime makes [Cache.Add] (explicit, or copying a get-hook result in)
	// reset the session's creation time to now.
	UpdateTime Mode = 0x400
)

const knownModeBits = Both | NoAutoClear | NoInternal | UpdateTime

// modeNames lists the names String prints and ParseMode accepts, composite
// names first so that String prefers them.
var modeNames = []struct {
	name string
	bits Mode
}{
	{"Both", Both},
	{"NoInternal", NoInternal},
	{"Client", Client},
	{"Server", Server},
	{"NoAutoClear", NoAutoClear},
	{"NoInternalLookup", NoInternalLookup},
	{"NoInternalStore", NoInternalStore},
	{"UpdateTime", UpdateTime},
}

// String returns the mode as flag names joined by "|", for example
// "Server|NoInternalStore", or "Off" for zero. Unknown bits print in hex.
func (m Mode) String() string {
	if m == Off {
		return "Off"
	}
	var parts []string
	rest := m
	for _, n := range modeNames {
		if rest&n.bits == n.bits {
			parts = append(parts, n.name)
			rest &^= n.bits
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// ParseMode parses what [Mode.String] prints: flag names joined by "|", ","
// or "+" (case does not matter, spaces are ignored), or a number such as
// "0x202". Unknown names and bits OpenSSL does not define are an error.
func ParseMode(s string) (Mode, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("tlscache: empty mode")
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		if Mode(n)&^knownModeBits != 0 {
			return 0, fmt.Errorf("tlscache: mode %q has unknown bits %#x", s, n&^uint64(knownModeBits))
		}
		return Mode(n), nil
	}
	var m Mode
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' || r == '+' }) {
		part = strings.TrimSpace(part)
		if strings.EqualFold(part, "Off") {
			continue
		}
		found := false
		for _, n := range modeNames {
			if strings.EqualFold(part, n.name) {
				m |= n.bits
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("tlscache: unknown mode flag %q (want Off, Client, Server, Both, NoAutoClear, NoInternalLookup, NoInternalStore, NoInternal or UpdateTime)", part)
		}
	}
	return m, nil
}
