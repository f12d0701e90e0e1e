package tlscache

import "testing"

func TestModeValuesMatchOpenSSL(t *testing.T) {
	for _, tt := range []struct {
		m    Mode
		want uint32
	}{
		{Off, 0x000}, {Client, 0x001}, {Server, 0x002}, {Both, 0x003}, {NoAutoClear, 0x080},
		{NoInternalLookup, 0x100}, {NoInternalStore, 0x200}, {NoInternal, 0x300}, {UpdateTime, 0x400},
	} {
		if uint32(tt.m) != tt.want {
			t.Errorf("%v = %#x, want %#x", tt.m, uint32(tt.m), tt.want)
		}
	}
}

func TestModeStringAndParse(t *testing.T) {
	for _, tt := range []struct {
		m Mode
		s string
	}{
		{Off, "Off"},
		{Server, "Server"},
		{Both, "Both"},
		{Server | NoInternalStore, "Server|NoInternalStore"},
		{Client | NoInternal | UpdateTime, "NoInternal|Client|UpdateTime"},
		{Server | NoAutoClear | NoInternalLookup, "Server|NoAutoClear|NoInternalLookup"},
		{Mode(0x802), "Server|0x800"},
	} {
		if got := tt.m.String(); got != tt.s {
			t.Errorf("%#x.String() = %q, want %q", uint32(tt.m), got, tt.s)
		}
		if tt.m&^knownModeBits != 0 {
			continue
		}
		if got, err := ParseMode(tt.s); err != nil || got != tt.m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", tt.s, got, err, tt.m)
		}
	}
	for _, in := range []string{"server, noInternalStore", "SERVER+NOINTERNALSTORE", "0x202", "514"} {
		if got, err := ParseMode(in); err != nil || got != Server|NoInternalStore {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", " ", "Servr", "0x1000", "Server|bogus"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}
