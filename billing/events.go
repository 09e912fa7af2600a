package billing

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
)

// Event types written to the outbox (and shown on timelines).
const (
	EvtSubscriptionCreated           = "subscription.created"
	EvtSubscriptionActivated         = "subscription.activated"
	EvtSubscriptionRenewed           = "subscription.renewed"
	EvtSubscriptionPastDue           = "subscription.past_due"
	EvtSubscriptionSuspended         = "subscription.suspended"
	EvtSubscriptionRecovered         = "subscription.recovered"
	EvtSubscriptionCanceled          = "subscription.canceled"
	EvtSubscriptionUnpaid            = "subscription.unpaid"
	EvtSubscriptionIncompleteExpired = "subscription.incomplete_expired"
	EvtSubscriptionPaused            = "subscription.paused"
	EvtSubscriptionResumed           = "subscription.resumed"
	EvtSubscriptionUpdated           = "subscription.updated"
	EvtInvoiceCreated                = "invoice.created"
	EvtInvoiceFinalized              = "invoice.finalized"
	EvtInvoicePaid                   = "invoice.paid"
	EvtInvoicePaymentFailed          = "invoice.payment_failed"
	EvtInvoiceVoided                 = "invoice.voided"
	EvtInvoiceUncollectible          = "invoice.uncollectible"
	EvtPaymentSucceeded              = "payment.succeeded"
	EvtPaymentFailed                 = "payment.failed"
	EvtPaymentUnknown                = "payment.unknown"
	EvtPaymentDeferred               = "payment.deferred"
	// EvtPaymentBackupCardCharged says the customer's backup card paid an invoice, and which card it was.
	EvtPaymentBackupCardCharged = "payment.backup_card_charged"
)

// Refs are the entities an event is about.
type Refs struct {
	CustomerID     string
	SubscriptionID string
	InvoiceID      string
	AttemptID      string
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// emit writes an event to the outbox in the caller's transaction.
func (s *Service) emit(ctx context.Context, db dbx.DBTX, typ string, refs Refs, at time.Time, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return s.q(db).InsertEvent(ctx, store.InsertEventParams{
		ID: ids.New("evt"), Type: typ, CustomerID: strPtr(refs.CustomerID), SubscriptionID: strPtr(refs.SubscriptionID),
		InvoiceID: strPtr(refs.InvoiceID), AttemptID: strPtr(refs.AttemptID), Data: raw, OccurredAt: at,
	})
}
