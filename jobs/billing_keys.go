package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/gateway"
)

// BillingKeyDeleteArgs deletes a revoked billing key at its gateway (billingkey.Vault.DeleteAtGateway).
// It is inserted in the revoking transaction, so a revocation that commits always has its job.
type BillingKeyDeleteArgs struct {
	KeyID string `json:"key_id"`
}

func (BillingKeyDeleteArgs) Kind() string { return "billing_key_gateway_delete" }

// InsertOpts: one job per key while it waits or runs; retried until the gateway confirms (see NextRetry).
func (BillingKeyDeleteArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness, MaxAttempts: keyDeleteMaxAttempts}
}

// keyDeleteMaxAttempts with keyDeleteMaxBackoff keeps retrying for about six weeks.
const (
	keyDeleteMaxAttempts = 1000
	keyDeleteMaxBackoff  = time.Hour
)

type keyDeletionQueue struct{ client *river.Client[pgx.Tx] }

var _ billingkey.DeletionQueue = (*keyDeletionQueue)(nil)

func (q *keyDeletionQueue) EnqueueGatewayDeleteTx(ctx context.Context, tx pgx.Tx, keyID string) error {
	if _, err := q.client.InsertTx(ctx, tx, BillingKeyDeleteArgs{KeyID: keyID}, nil); err != nil {
		return fmt.Errorf("enqueue gateway deletion of billing key %s: %w", keyID, err)
	}
	return nil
}

type billingKeyDeleteWorker struct {
	river.WorkerDefaults[BillingKeyDeleteArgs]
	v *billingkey.Vault
}

func (w *billingKeyDeleteWorker) Work(ctx context.Context, j *river.Job[BillingKeyDeleteArgs]) error {
	err := w.v.DeleteAtGateway(ctx, j.Args.KeyID)
	var tl *gateway.TryLaterError
	if errors.As(err, &tl) {
		// Not sent (open circuit, rate limit): wait without spending an attempt.
		return river.JobSnooze(max(tl.RetryAfter, 5*time.Second))
	}
	return err
}

// NextRetry backs off like River (attempt^4 seconds) but never waits more than an hour: the deletion is
// owed until the gateway confirms it, so it keeps being tried.
func (w *billingKeyDeleteWorker) NextRetry(j *river.Job[BillingKeyDeleteArgs]) time.Time {
	n := time.Duration(len(j.Errors) + 1)
	return time.Now().Add(min(n*n*n*n*time.Second, keyDeleteMaxBackoff))
}
