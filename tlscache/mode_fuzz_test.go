package tlscache

import (
	"strings"
	"testing"
)

// FuzzParseMode: ParseMode reads what clients of an admin API send; any
// text is a mode of known bits that prints and parses back to itself, or
// an error with no mode; never a panic.
func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"Server", "Server|NoInternalStore", "Both,NoAutoClear+UpdateTime", "0x282", "0", "Off",
		"", "|", "0x10000", "Sever", "server | noautoclear", "0xffffffffffffffffff", "NoInternal|NoInternal"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			if m != 0 {
				t.Fatalf("ParseMode(%q) = %v with error %v", s, m, err)
			}
			if !strings.HasPrefix(err.Error(), "tlscache: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		if m&^knownModeBits != 0 {
			t.Fatalf("ParseMode(%q) = %#x: unknown bits", s, uint32(m))
		}
		back, err := ParseMode(m.String())
		if err != nil || back != m {
			t.Fatalf("ParseMode(%q) = %v, which parses back as %v, %v", s, m, back, err)
		}
	})
}
