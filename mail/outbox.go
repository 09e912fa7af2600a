package mail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

var _ billing.EventBatchSink = (*Service)(nil)

// EventRecorded queues the emails an event owes, in the event's transaction (billing calls it from
// every emit). A kind that is turned off queues nothing; a second call for the same event and kind
// queues nothing more (the outbox's unique (event_id, kind)).
func (s *Service) EventRecorded(ctx context.Context, db dbx.DBTX, e billing.RecordedEvent) error {
	kinds := kindsFor(e.Type, e.Data)
	if len(kinds) == 0 {
		return nil
	}
	now := s.wall.Now()
	for _, k := range kinds {
		if !s.kinds[k] {
			continue
		}
		if err := s.q(db).InsertMail(ctx, store.InsertMailParams{EventID: e.ID, Kind: string(k), CustomerID: ptr(e.Refs.CustomerID),
			SubscriptionID: ptr(e.Refs.SubscriptionID), InvoiceID: ptr(e.Refs.InvoiceID), Data: e.Data, Now: now, OccurredAt: e.At}); err != nil {
			return fmt.Errorf("queue %s email for %s: %w", k, e.ID, err)
		}
	}
	return nil
}

// EventsRecorded is EventRecorded for the events of a batch (billing.RenewBatch), with one insert for all
// the emails they owe: a batch of renewals paid is a batch of receipts.
func (s *Service) EventsRecorded(ctx context.Context, db dbx.DBTX, es []billing.RecordedEvent) error {
	var p store.InsertMailsParams
	for _, e := range es {
		for _, k := range kindsFor(e.Type, e.Data) {
			if !s.kinds[k] {
				continue
			}
			p.EventIds = append(p.EventIds, e.ID)
			p.Kinds = append(p.Kinds, string(k))
			p.CustomerIds = append(p.CustomerIds, e.Refs.CustomerID)
			p.SubscriptionIds = append(p.SubscriptionIds, e.Refs.SubscriptionID)
			p.InvoiceIds = append(p.InvoiceIds, e.Refs.InvoiceID)
			p.Datas = append(p.Datas, string(e.Data))
			p.OccurredAts = append(p.OccurredAts, e.At)
		}
	}
	if len(p.EventIds) == 0 {
		return nil
	}
	p.Now = s.wall.Now()
	if err := s.q(db).InsertMails(ctx, p); err != nil {
		return fmt.Errorf("queue %d emails of a batch: %w", len(p.EventIds), err)
	}
	return nil
}

// Dispatch enqueues a ticket for every email that is due: queued and due, or left 'sending' by a dead
// sender past its lease. A ticket already waiting is not duplicated (the Enqueuer's uniqueness), and a
// lost one is offered again on the next run: the row, not the queue, says what is owed.
func (s *Service) Dispatch(ctx context.Context) (int, error) {
	if s.enq == nil {
		return 0, errors.New("mail: no enqueuer installed")
	}
	n := 0
	err := dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := s.q(tx).DueMail(ctx, store.DueMailParams{Now: s.wall.Now(), Max: 1000})
		if err != nil {
			return fmt.Errorf("due emails: %w", err)
		}
		tickets := make([]Ticket, 0, len(rows))
		for _, r := range rows {
			tickets = append(tickets, Ticket{ID: r.ID, Attempt: int(r.Attempts) + 1})
		}
		n = len(tickets)
		return s.enq.EnqueueTx(ctx, tx, tickets...)
	})
	return n, err
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Email is one customer email as support sees it: what it was, to whom, and how its delivery went.
type Email struct {
	ID             int64
	EventID        string
	Kind           Kind
	SubscriptionID string
	InvoiceID      string
	// Status is queued, sending, sent, failed or skipped; Attempts how many sends were tried.
	Status   string
	Attempts int
	// NextAttemptAt is the next try of a queued email (the lease's end while sending).
	NextAttemptAt *time.Time
	To, Subject   string
	// LastCode and LastError are the last failure's SMTP reply code (0: none, or no reply) and error; they
	// stay after a later success.
	LastCode  int
	LastError string
	// OccurredAt is its event's domain time; SentAt when the server accepted it (wall clock).
	OccurredAt time.Time
	SentAt     *time.Time
}

// CustomerEmails lists a customer's most recent emails, newest first, at most max (the console's timeline). It reads
// the outbox whether or not sending is on, so the emails of an earlier configuration still show.
func CustomerEmails(ctx context.Context, db dbx.DBTX, customerID string, max int) ([]Email, error) {
	rows, err := store.New(db).CustomerMail(ctx, store.CustomerMailParams{CustomerID: &customerID, Max: int32(max)})
	if err != nil {
		return nil, fmt.Errorf("customer emails: %w", err)
	}
	out := make([]Email, len(rows))
	for i, r := range rows {
		e := Email{ID: r.ID, EventID: r.EventID, Kind: Kind(r.Kind), SubscriptionID: deref(r.SubscriptionID), InvoiceID: deref(r.InvoiceID),
			Status: r.Status, Attempts: int(r.Attempts), NextAttemptAt: r.NextAttemptAt, To: deref(r.Recipient), Subject: deref(r.Subject),
			LastError: deref(r.LastError), OccurredAt: r.OccurredAt, SentAt: r.SentAt}
		if r.LastCode != nil {
			e.LastCode = int(*r.LastCode)
		}
		out[i] = e
	}
	return out, nil
}
