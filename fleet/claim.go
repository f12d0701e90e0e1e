package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/tlscache/tlscache/tlscache"
)

// ErrNoClaim is the error of [Tier.Claim] on a store that is not a
// [tlscache.Claimer].
var ErrNoClaim = errors.New("tlscache/fleet: store cannot claim keys (not a tlscache.Claimer)")

var _ tlscache.Claimer = (*Tier)(nil)

// Claim claims key in the store, under the tier's deadline and back-off:
// give the tier to adapter.ServerOptions.EarlyDataClaims, and a ticket's
// early data is accepted once across the fleet. A store that cannot claim
// ([ErrNoClaim]), fails or is skipped is an error, which the adapter takes
// as a refusal of early data (fail closed). The key is stored as given: the
// adapter's keys do not collide with session keys (hex IDs).
func (t *Tier) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	c, ok := t.store.(tlscache.Claimer)
	if !ok {
		return false, ErrNoClaim
	}
	var won bool
	err := t.do(ctx, key, func(ctx context.Context) (err error) {
		won, err = c.Claim(ctx, key, ttl)
		return err
	})
	return won, err
}
