package notify

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

// RotateSecrets re-encrypts every endpoint secret sealed under an older key version with the current one,
// batchSize rows per transaction (like billingkey's Vault.Rotate, which it should run beside): only when
// both report nothing left may an old version leave BILLING_ENCRYPTION_KEYS.
func (s *Service) RotateSecrets(ctx context.Context, batchSize int) (rotated int, err error) {
	if s.ring == nil {
		return 0, errNoKeyRing
	}
	if batchSize <= 0 {
		batchSize = 500
	}
	current := s.ring.Current()
	for {
		n := 0
		err := dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := s.q(tx).StaleSecretsForUpdate(ctx, store.StaleSecretsForUpdateParams{CurrentVersion: int32(current), Lim: int32(batchSize)})
			if err != nil {
				return fmt.Errorf("select webhook secrets to rotate: %w", err)
			}
			for _, r := range rows {
				pt, err := s.ring.Open(r.SecretCiphertext, int(r.SecretKeyVersion), binding(r.ID)...)
				if err != nil {
					return fmt.Errorf("rotate webhook secret of %s (version %d): %w", r.ID, r.SecretKeyVersion, err)
				}
				ct, version, err := s.ring.Seal(pt, binding(r.ID)...)
				clear(pt)
				if err != nil {
					return err
				}
				if err := s.q(tx).ReencryptSecret(ctx, store.ReencryptSecretParams{ID: r.ID, SecretCiphertext: ct, SecretKeyVersion: int32(version)}); err != nil {
					return fmt.Errorf("store rotated webhook secret of %s: %w", r.ID, err)
				}
			}
			n = len(rows)
			return nil
		})
		if err != nil {
			return rotated, err
		}
		rotated += n
		if n < batchSize {
			return rotated, nil
		}
	}
}
