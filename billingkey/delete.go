package billingkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/store"
)

// A revoked key is deleted at its gateway too, so that nobody holding the token (us included, through a
// leaked backup) can charge it. The order keeps a revoked key from ever being charged by us:
//
//  1. Revoke commits the local revocation (status revoked: Token and Tokens refuse the key from then on,
//     so no charge and no resend of an unknown attempt can take it) together with the job that deletes it
//     at the gateway (DeletionQueue, the same transaction: a crash after the commit loses nothing, and
//     a rollback leaves no job).
//  2. The job (DeleteAtGateway) decrypts the token, which only the gateway call needs now, and asks the
//     gateway to delete it; a failure is retried with backoff until it is done, and a key the gateway no
//     longer knows counts as done.
//  3. Once the gateway confirms, the ciphertext is destroyed (NULL) and gateway_deleted_at is set, in one
//     statement. Until then the ciphertext stays: the deletion itself needs it.
//
// A charge that took its token before the revocation committed may still reach the gateway; it started
// before the merchant's revocation and is recorded as any other. Nothing takes a token after it.

// DeletionQueue enqueues the gateway deletion of a revoked key in the revoking transaction (package jobs
// implements it with River).
type DeletionQueue interface {
	EnqueueGatewayDeleteTx(ctx context.Context, tx pgx.Tx, keyID string) error
}

// SetDeletionQueue installs the queue (the job runner is built after the vault). Without one, revoked
// keys are only revoked locally, and GatewayDeletesOwed lists them.
func (v *Vault) SetDeletionQueue(q DeletionQueue) { v.deletions = q }

// deleteTimeout bounds one gateway deletion; the adapter has its own per-request timeout.
const deleteTimeout = 30 * time.Second

// ErrGatewayNotEnabled means a key's gateway is not configured, so it cannot be deleted there now; the
// deletion stays owed.
var ErrGatewayNotEnabled = errors.New("the key's gateway is not enabled")

// DeleteAtGateway deletes a revoked key at its gateway and then destroys its ciphertext. It is
// idempotent: a key already deleted (or not revoked, or gone) is a no-op. An error means the deletion is
// still owed and must be retried: gateway.ErrTryLater when it was not sent, anything else when the
// gateway refused or could not be reached.
func (v *Vault) DeleteAtGateway(ctx context.Context, keyID string) error {
	row, err := v.q(v.pool).KeyForGatewayDelete(ctx, keyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load billing key %s: %w", keyID, err)
	}
	if row.Status != StatusRevoked || row.GatewayDeletedAt != nil {
		return nil
	}
	var gw gateway.Gateway
	ok := false
	if v.gateways != nil {
		gw, ok = v.gateways.Get(row.Gateway)
	}
	if !ok {
		return fmt.Errorf("delete billing key %s at %s: %w", keyID, row.Gateway, ErrGatewayNotEnabled)
	}
	pt, err := v.ring.Open(row.Ciphertext, int(row.KeyVersion), binding(row.ID, row.CustomerID)...)
	if err != nil {
		v.log.ErrorContext(ctx, "billing key does not decrypt", "billing_key_id", keyID, "key_version", row.KeyVersion, "err", err)
		return fmt.Errorf("decrypt billing key %s: %w", keyID, err)
	}
	v.log.DebugContext(ctx, "billing key decrypted for deletion at the gateway", "billing_key_id", keyID, "customer_id", row.CustomerID)
	gctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	err = gw.DeleteBillingKey(gctx, gateway.NewBillingKeyToken(string(pt)), row.CustomerKey)
	cancel()
	if err != nil {
		v.log.WarnContext(ctx, "billing key not deleted at the gateway yet; will retry", "billing_key_id", keyID,
			"customer_id", row.CustomerID, "gateway", row.Gateway, "err", err)
		return fmt.Errorf("delete billing key %s at %s: %w", keyID, row.Gateway, err)
	}
	now := v.clock.Now()
	n, err := v.q(v.pool).MarkGatewayDeleted(ctx, store.MarkGatewayDeletedParams{ID: keyID, DeletedAt: &now})
	if err != nil {
		return fmt.Errorf("record the gateway's deletion of billing key %s: %w", keyID, err)
	}
	if n > 0 {
		v.log.InfoContext(ctx, "billing key deleted at the gateway; its ciphertext is destroyed", "billing_key_id", keyID,
			"customer_id", row.CustomerID, "gateway", row.Gateway)
	}
	return nil
}

// GatewayDeletesOwed lists up to limit revoked keys whose deletion the gateway has not confirmed, oldest
// revocation first: the sweep re-enqueues their jobs (a job that gave up, keys revoked before deletion
// existed).
func (v *Vault) GatewayDeletesOwed(ctx context.Context, limit int) ([]string, error) {
	ids, err := v.q(v.pool).GatewayDeletesOwed(ctx, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("billing keys owed a gateway deletion: %w", err)
	}
	return ids, nil
}
