package billing

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/store"
)

// KeyRegistered is the vault's heal hook: a new (or newly default) billing key makes every open invoice
// of the customer due for a charge now, including those that were waiting after a hard decline. It runs in
// the vault's transaction, so the key and the retries commit together.
func (s *Service) KeyRegistered(ctx context.Context, tx pgx.Tx, customerID string) error {
	now := s.clock.Now()
	ids, err := s.q(tx).RetryOpenInvoicesNow(ctx, store.RetryOpenInvoicesNowParams{Now: &now, CustomerID: customerID})
	if err != nil {
		return err
	}
	work := make([]Work, 0, len(ids))
	for _, id := range ids {
		work = append(work, Work{Kind: WorkCollect, ID: id, At: now})
	}
	return s.sched.ScheduleTx(ctx, tx, work...)
}

// Delinquent reports whether the customer has an open invoice whose charge failed (the vault then makes
// a newly registered key the default).
func (s *Service) Delinquent(ctx context.Context, tx pgx.Tx, customerID string) (bool, error) {
	return s.q(tx).HasFailedOpenInvoice(ctx, customerID)
}
