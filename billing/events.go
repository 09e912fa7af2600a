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

// RecordedEvent is an event as its transaction wrote it.
type RecordedEvent struct {
	ID   string
	Type string
	Refs Refs
	// At is the event's domain time; Data its JSON data.
	At   time.Time
	Data json.RawMessage
}

// EventSink receives every event in the transaction that records it, after the event row is written: what
// it writes commits or rolls back with the event (package mail queues the customer emails an event owes).
// An error rolls the event's transaction back. It must be quick: it runs on every event of the charge path.
type EventSink interface {
	EventRecorded(ctx context.Context, db dbx.DBTX, e RecordedEvent) error
}

// EventBatchSink is an EventSink that also takes many events at once. The batch engine (RenewBatch)
// writes its events with one statement; a sink implementing this gets them in one call, in the same
// transaction, and can write what it owes with one statement too. Other sinks get one EventRecorded per
// event.
type EventBatchSink interface {
	EventSink
	EventsRecorded(ctx context.Context, db dbx.DBTX, es []RecordedEvent) error
}

// SetEventSink installs the sink (nil: none). It is shared by every WithPool copy of the service.
func (s *Service) SetEventSink(sink EventSink) {
	if sink == nil {
		s.sink.Store(nil)
		return
	}
	s.sink.Store(&sink)
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
	id := ids.New("evt")
	if err := s.q(db).InsertEvent(ctx, store.InsertEventParams{
		ID: id, Type: typ, CustomerID: strPtr(refs.CustomerID), SubscriptionID: strPtr(refs.SubscriptionID),
		InvoiceID: strPtr(refs.InvoiceID), AttemptID: strPtr(refs.AttemptID), Data: raw, OccurredAt: at,
	}); err != nil {
		return err
	}
	if sink := s.sink.Load(); sink != nil {
		return (*sink).EventRecorded(ctx, db, RecordedEvent{ID: id, Type: typ, Refs: refs, At: at, Data: raw})
	}
	return nil
}

// sinkBatch hands the events a batch inserted (InsertEvents) to the sink, in the batch's transaction: the
// single path's emit does it per event, and a batch must owe what the same events owe one by one (a
// renewal the batch paid gets its receipt email).
func (s *Service) sinkBatch(ctx context.Context, db dbx.DBTX, p store.InsertEventsParams) error {
	sink := s.sink.Load()
	if sink == nil || len(p.Ids) == 0 {
		return nil
	}
	es := make([]RecordedEvent, len(p.Ids))
	for i := range p.Ids {
		es[i] = RecordedEvent{ID: p.Ids[i], Type: p.Types[i], At: p.OccurredAt, Data: json.RawMessage(p.Datas[i]),
			Refs: Refs{CustomerID: p.CustomerIds[i], SubscriptionID: p.SubscriptionIds[i], InvoiceID: p.InvoiceIds[i], AttemptID: p.AttemptIds[i]}}
	}
	if b, ok := (*sink).(EventBatchSink); ok {
		return b.EventsRecorded(ctx, db, es)
	}
	for _, e := range es {
		if err := (*sink).EventRecorded(ctx, db, e); err != nil {
			return err
		}
	}
	return nil
}
