package billingkey

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/store"
)

// DefaultRotateBatch is Rotate's batch size when none is given.
const DefaultRotateBatch = 500

// Rotate re-encrypts every billing key sealed under an older key version with the current one, batchSize
// rows per transaction. Rows another transaction holds are skipped rather than waited for, so rotation
// runs beside live traffic; run it again to pick up what was skipped. Once it reports nothing left, the old
// versions can be dropped from BILLING_ENCRYPTION_KEYS.
func (v *Vault) Rotate(ctx context.Context, batchSize int) (rotated int, err error) {
	if batchSize <= 0 {
		batchSize = DefaultRotateBatch
	}
	current := v.ring.Current()
	for {
		n := 0
		err := v.inTx(ctx, func(tx pgx.Tx) error {
			rows, err := v.q(tx).StaleKeysForUpdate(ctx, store.StaleKeysForUpdateParams{CurrentVersion: int32(current), Lim: int32(batchSize)})
			if err != nil {
				return fmt.Errorf("select keys to rotate: %w", err)
			}
			for _, r := range rows {
				b := binding(r.ID, r.CustomerID)
				pt, err := v.ring.Open(r.Ciphertext, int(r.KeyVersion), b...)
				if err != nil {
					return fmt.Errorf("rotate billing key %s (version %d): %w", r.ID, r.KeyVersion, err)
				}
				ct, version, err := v.ring.Seal(pt, b...)
				clear(pt)
				if err != nil {
					return err
				}
				if err := v.q(tx).Reencrypt(ctx, store.ReencryptParams{ID: r.ID, Ciphertext: ct, KeyVersion: int32(version)}); err != nil {
					return fmt.Errorf("store rotated billing key %s: %w", r.ID, err)
				}
			}
			n = len(rows)
			return nil
		})
		if err != nil {
			return rotated, err
		}
		rotated += n
		if n > 0 {
			v.log.InfoContext(ctx, "billing keys rotated", "batch", n, "total", rotated, "key_version", current)
		}
		if n < batchSize {
			return rotated, nil
		}
	}
}
