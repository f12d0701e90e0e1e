package metrics

import (
	"reflect"
	"testing"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/fleet"
	"github.com/tlscache/tlscache/tlscache"
)

// A counter added to Stats needs its help text here too.
func TestEveryFieldHasHelp(t *testing.T) {
	for _, c := range []struct {
		t    reflect.Type
		help map[string]string
	}{
		{reflect.TypeFor[tlscache.Stats](), cacheHelp},
		{reflect.TypeFor[fleet.Stats](), tierHelp},
		{reflect.TypeFor[adapter.EarlyDataStats](), earlyHelp},
	} {
		for i := range c.t.NumField() {
			if name := c.t.Field(i).Name; c.help[name] == "" {
				t.Errorf("%s.%s has no help text", c.t, name)
			}
		}
		if len(c.help) != c.t.NumField() {
			t.Errorf("%s: %d help texts for %d fields", c.t, len(c.help), c.t.NumField())
		}
	}
}
