package billing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// errConcurrentUpdate means a compare-and-set lost to a concurrent writer; the job retries.
var errConcurrentUpdate = errors.New("concurrent update, retry")

func subParams(r store.Subscription, now time.Time) store.UpdateSubscriptionParams {
	return store.UpdateSubscriptionParams{ID: r.ID, Version: r.Version, PlanID: r.PlanID, Quantity: r.Quantity, Status: r.Status, BillingAnchor: r.BillingAnchor,
		CurrentPeriodStart: r.CurrentPeriodStart, CurrentPeriodEnd: r.CurrentPeriodEnd, NextRenewalAt: r.NextRenewalAt,
		TrialEnd: r.TrialEnd, CancelAtPeriodEnd: r.CancelAtPeriodEnd, CanceledAt: r.CanceledAt, CancelReason: r.CancelReason,
		PendingPlanID: r.PendingPlanID, PendingQuantity: r.PendingQuantity, PausedAt: r.PausedAt,
		IncompleteExpiresAt: r.IncompleteExpiresAt, PastDueSince: r.PastDueSince, GraceEndsAt: r.GraceEndsAt,
		DunningEndsAt: r.DunningEndsAt, DunningPaused: r.DunningPaused, DunningPausedUntil: r.DunningPausedUntil, UpdatedAt: now}
}

// saveSubscription writes p with compare-and-set on the version it was read at.
func (s *Service) saveSubscription(ctx context.Context, tx pgx.Tx, p store.UpdateSubscriptionParams) (store.Subscription, error) {
	row, err := s.q(tx).UpdateSubscription(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, fmt.Errorf("subscription %s: %w", p.ID, errConcurrentUpdate)
	}
	return row, err
}

// fireSub fires a subscription trigger and returns the new status.
func fireSub(ctx context.Context, status string, t statemachine.SubscriptionTrigger) (string, error) {
	next, err := statemachine.FireSubscription(ctx, statemachine.SubscriptionStatus(status), t)
	return string(next), err
}

type failure struct {
	hard         bool
	declines     int
	cardAttempts int
	code         string
	keyID        *string // the declined key; nil when no key could be charged
}

// codeNoKey is the failure of an invoice that found no chargeable key (nothing was sent).
const codeNoKey = "no_chargeable_billing_key"

// afterFailure walks dunning after a decline (or a missing key): the subscription goes past_due with its
// grace and dunning window, and the invoice gets its next retry, waits for a new key, or is closed by the
// final action when retries are exhausted.
func (s *Service) afterFailure(ctx context.Context, tx pgx.Tx, sub *store.Subscription, inv store.Invoice, ap applied, f failure, now time.Time) error {
	policy := ap.policy
	p := invoiceParams(inv)
	if p.FirstFailedAt == nil {
		p.FirstFailedAt = &now
	}
	p.NextAttemptAt = nil
	if sub != nil && sub.Status == string(statemachine.SubscriptionIncomplete) {
		// A first charge that fails leaves the subscription incomplete: no automatic retries; a new key
		// heals it, and it expires when its window ends.
		_, err := s.q(tx).UpdateInvoice(ctx, p)
		return err
	}
	if sub != nil && (sub.Status == string(statemachine.SubscriptionCanceled) || sub.Status == string(statemachine.SubscriptionIncompleteExpired)) {
		// The subscription ended while this charge was in flight: no retries and no dunning walk (its final
		// action would fire on a terminal state). The invoice is closed the way the cancel closed the
		// others: void when nothing was collected, otherwise written off.
		row, err := s.q(tx).UpdateInvoice(ctx, p)
		if err != nil {
			return err
		}
		if row.AmountPaid.IsZero() {
			return s.voidInvoice(ctx, tx, row, now)
		}
		return s.writeOff(ctx, tx, row, now)
	}
	loc, err := s.customerZone(ctx, tx, inv.CustomerID, policy)
	if err != nil {
		return err
	}
	backup, hasBackup, err := s.backupAvailable(ctx, tx, policy, inv)
	if err != nil {
		return err
	}
	if ap.exempt {
		hasBackup = false // an exempt customer's cards are not chased, the backup neither
	}
	var decision dunning.Decision
	if f.code == codeNoKey {
		decision = dunning.Decision{WaitForNewKey: true, TryBackup: hasBackup && slices.Contains(policy.BackupCard, dunning.BackupAfterHardDecline),
			Why: "no chargeable billing key"}
	} else {
		var issuer string
		if f.keyID != nil {
			card, err := s.vault.Card(ctx, tx, *f.keyID)
			if err != nil {
				return err
			}
			issuer = card.Brand
		}
		decision = policy.AfterDecline(dunning.DeclineFacts{Hard: f.hard, Code: f.code, Declines: f.declines, CardAttempts: f.cardAttempts,
			FirstFailedAt: *p.FirstFailedAt, Now: now, TimeZone: loc, Issuer: issuer, BackupAvailable: hasBackup},
			rand.New(rand.NewPCG(uint64(now.UnixNano()), uint64(len(inv.ID)))))
	}
	if !decision.RetryAt.IsZero() {
		p.NextAttemptAt = &decision.RetryAt
	}
	if ap.exempt {
		// No dunning for this customer (dunning_override.go): the invoice keeps the retry the policy chose
		// (held, no job: lifting the exemption resumes it), and the subscription's dunning is paused.
		if sub == nil {
			p.NextAttemptAt = nil
		}
		if inv, err = s.q(tx).UpdateInvoice(ctx, p); err != nil || sub == nil {
			return err
		}
		return s.failExempt(ctx, tx, sub, inv, ap, *p.FirstFailedAt, decision.Why, now)
	}
	if decision.TryBackup {
		// The backup card goes before the final action; its outcome decides the rest.
		if err := s.scheduleBackup(ctx, tx, &p, policy, loc, backup, now); err != nil {
			return err
		}
		decision.Exhausted = false
		decision.Why += "; the backup card is tried once"
	}
	inv, err = s.q(tx).UpdateInvoice(ctx, p)
	if err != nil {
		return err
	}
	if decision.RetryAt.IsZero() && sub == nil {
		return nil
	}
	if !decision.RetryAt.IsZero() {
		if err := s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkCollect, ID: inv.ID, At: decision.RetryAt}); err != nil {
			return err
		}
	}
	if sub == nil {
		return nil
	}
	row := *sub
	if row.Status == string(statemachine.SubscriptionActive) || row.Status == string(statemachine.SubscriptionTrialing) {
		next, err := fireSub(ctx, row.Status, statemachine.SubscriptionPaymentFailed)
		if err != nil {
			return err
		}
		first := *p.FirstFailedAt
		grace, end := first.Add(policy.GracePeriod.D()), first.Add(policy.DunningWindow.D())
		sp := subParams(row, now)
		sp.Status, sp.PastDueSince, sp.GraceEndsAt, sp.DunningEndsAt = next, &first, &grace, &end
		if row, err = s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		*sub = row
		refs := Refs{CustomerID: row.CustomerID, SubscriptionID: row.ID, InvoiceID: inv.ID}
		if err := s.emit(ctx, tx, EvtSubscriptionPastDue, refs, now, map[string]any{"grace_ends_at": grace, "dunning_ends_at": end, "why": decision.Why}); err != nil {
			return err
		}
		if err := s.sched.ScheduleTx(ctx, tx,
			Work{Kind: WorkGraceEnd, ID: row.ID, At: grace},
			Work{Kind: WorkDunningEnd, ID: row.ID, At: end}); err != nil {
			return err
		}
	}
	if decision.Exhausted {
		return s.applyFinalAction(ctx, tx, sub, policy, decision.Why, now)
	}
	return nil
}

// applyFinalAction ends dunning: the subscription is canceled or marked unpaid per policy, and its open
// invoices become uncollectible with their receivable written off to bad debt.
func (s *Service) applyFinalAction(ctx context.Context, tx pgx.Tx, sub *store.Subscription, policy dunning.Policy, why string, now time.Time) error {
	row := *sub
	trigger, evt := statemachine.SubscriptionDunningCancel, EvtSubscriptionCanceled
	if policy.FinalAction == dunning.FinalUnpaid {
		trigger, evt = statemachine.SubscriptionDunningMarkUnpaid, EvtSubscriptionUnpaid
	}
	next, err := fireSub(ctx, row.Status, trigger)
	if err != nil {
		return err
	}
	sp := subParams(row, now)
	sp.Status = next
	sp.NextRenewalAt = nil
	if evt == EvtSubscriptionCanceled {
		sp.CanceledAt = &now
		reason := "dunning exhausted"
		sp.CancelReason = &reason
	}
	if row, err = s.saveSubscription(ctx, tx, sp); err != nil {
		return err
	}
	*sub = row
	invoices, err := s.q(tx).OpenInvoicesForSubscription(ctx, &row.ID)
	if err != nil {
		return err
	}
	for _, inv := range invoices {
		if inv.ID != "" {
			locked, err := s.q(tx).LockInvoice(ctx, inv.ID)
			if err != nil {
				return err
			}
			if err := s.writeOff(ctx, tx, locked, now); err != nil {
				return err
			}
		}
	}
	return s.emit(ctx, tx, evt, Refs{CustomerID: row.CustomerID, SubscriptionID: row.ID}, now, map[string]any{"why": why, "final_action": string(policy.FinalAction)})
}

// writeOff marks an open invoice uncollectible and moves what is due from receivable to bad debt.
func (s *Service) writeOff(ctx context.Context, tx pgx.Tx, inv store.Invoice, now time.Time) error {
	next, err := statemachine.FireInvoice(ctx, statemachine.InvoiceStatus(inv.Status), statemachine.InvoiceMarkUncollectible, statemachine.InvoiceFacts{AmountPaidIsZero: inv.AmountPaid.IsZero()})
	if err != nil {
		return err
	}
	p := invoiceParams(inv)
	p.Status, p.NextAttemptAt = string(next), nil
	if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
		return err
	}
	if inv.AmountDue.IsPositive() {
		if err := s.post(ctx, tx, "write_off", inv.ID, inv.CustomerID, "uncollectible "+inv.ID, now,
			Entry{Account: AccountBadDebt, Currency: inv.Currency, Amount: inv.AmountDue},
			Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: inv.AmountDue.Neg()}); err != nil {
			return err
		}
	}
	return s.emit(ctx, tx, EvtInvoiceUncollectible, Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}, now,
		map[string]any{"amount_due": money.String(inv.AmountDue, inv.Currency), "currency": inv.Currency})
}

// onInvoicePaid heals the subscription: incomplete becomes active, a delinquent one recovers once no
// other invoice of it is in dunning.
func (s *Service) onInvoicePaid(ctx context.Context, tx pgx.Tx, sub store.Subscription, inv store.Invoice, now time.Time) error {
	refs := Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID, InvoiceID: inv.ID}
	switch statemachine.SubscriptionStatus(sub.Status) {
	case statemachine.SubscriptionIncomplete, statemachine.SubscriptionTrialing:
		next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionActivate)
		if err != nil {
			return err
		}
		sp := subParams(sub, now)
		sp.Status, sp.IncompleteExpiresAt = next, nil
		row, err := s.saveSubscription(ctx, tx, sp)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EvtSubscriptionActivated, refs, now, nil); err != nil {
			return err
		}
		if row.NextRenewalAt != nil {
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkRenew, ID: row.ID, At: *row.NextRenewalAt})
		}
		return nil
	case statemachine.SubscriptionPastDue, statemachine.SubscriptionSuspended, statemachine.SubscriptionUnpaid:
		open, err := s.q(tx).OpenInvoicesForSubscription(ctx, &sub.ID)
		if err != nil {
			return err
		}
		for _, o := range open {
			if o.ID != inv.ID && o.FirstFailedAt != nil {
				return nil // still delinquent on another invoice
			}
		}
		next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionRecover)
		if err != nil {
			return err
		}
		sp := subParams(sub, now)
		sp.Status, sp.PastDueSince, sp.GraceEndsAt, sp.DunningEndsAt = next, nil, nil, nil
		sp.DunningPaused, sp.DunningPausedUntil = false, nil
		row, err := s.saveSubscription(ctx, tx, sp)
		if err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EvtSubscriptionRecovered, refs, now, map[string]any{"from": sub.Status}); err != nil {
			return err
		}
		// Grace and dunning are over: their queued steps go in this transaction (they would be no-ops).
		if err := s.cancelWork(ctx, tx, sub.ID, WorkGraceEnd, WorkDunningEnd); err != nil {
			return err
		}
		if row.NextRenewalAt != nil {
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkRenew, ID: row.ID, At: *row.NextRenewalAt})
		}
	}
	return nil
}

// EndGrace suspends a past_due subscription whose grace period is over (service off; retries go on).
func (s *Service) EndGrace(ctx context.Context, subID string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.q(tx).LockSubscription(ctx, subID)
		if err != nil {
			return err
		}
		if sub.Status != string(statemachine.SubscriptionPastDue) || sub.GraceEndsAt == nil || sub.GraceEndsAt.After(now) || sub.DunningPaused {
			return nil
		}
		if ap, err := s.policyFor(ctx, tx, sub.CustomerID, &sub); err != nil || ap.exempt {
			return err // an exempt customer keeps service while past_due
		}
		next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionSuspend)
		if err != nil {
			return err
		}
		sp := subParams(sub, now)
		sp.Status = next
		if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		return s.emit(ctx, tx, EvtSubscriptionSuspended, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}, now, nil)
	})
}

// EndDunning applies the final action when the dunning window is over and no retry is still coming.
func (s *Service) EndDunning(ctx context.Context, subID string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.q(tx).LockSubscription(ctx, subID)
		if err != nil {
			return err
		}
		// A support pause whose time is up ends here: the pause scheduled this step for its end.
		if sub, err = s.resumeDue(ctx, tx, sub, now); err != nil {
			return err
		}
		st := statemachine.SubscriptionStatus(sub.Status)
		if (st != statemachine.SubscriptionPastDue && st != statemachine.SubscriptionSuspended) || sub.DunningEndsAt == nil || sub.DunningEndsAt.After(now) || sub.DunningPaused {
			return nil
		}
		open, err := s.q(tx).OpenInvoicesForSubscription(ctx, &sub.ID)
		if err != nil {
			return err
		}
		// A retry still scheduled, or an outcome still unknown, decides first: check again after it.
		var wait *time.Time
		for _, inv := range open {
			if inv.NextAttemptAt != nil && (wait == nil || inv.NextAttemptAt.After(*wait)) {
				t := inv.NextAttemptAt.Add(time.Second)
				wait = &t
			}
			if _, err := s.q(tx).InFlightAttempt(ctx, inv.ID); err == nil {
				t := now.Add(time.Minute)
				if wait == nil || t.After(*wait) {
					wait = &t
				}
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if wait != nil {
			sp := subParams(sub, now)
			sp.DunningEndsAt = wait
			if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
				return err
			}
			return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkDunningEnd, ID: sub.ID, At: *wait})
		}
		ap, err := s.policyFor(ctx, tx, sub.CustomerID, &sub)
		if err != nil {
			return err
		}
		if ap.exempt {
			return nil // an exempt customer's subscription is never ended for non-payment
		}
		return s.applyFinalAction(ctx, tx, &sub, ap.policy, "dunning window over", now)
	})
}

// ExpireIncomplete ends a subscription whose first payment never succeeded within its window: the
// subscription becomes incomplete_expired and its open invoices are voided (nothing was collected).
func (s *Service) ExpireIncomplete(ctx context.Context, subID string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.q(tx).LockSubscription(ctx, subID)
		if err != nil {
			return err
		}
		if sub.Status != string(statemachine.SubscriptionIncomplete) || sub.IncompleteExpiresAt == nil || sub.IncompleteExpiresAt.After(now) {
			return nil
		}
		open, err := s.q(tx).OpenInvoicesForSubscription(ctx, &sub.ID)
		if err != nil {
			return err
		}
		for _, inv := range open {
			if _, err := s.q(tx).InFlightAttempt(ctx, inv.ID); err == nil {
				// The first charge's outcome is unknown: money may have moved. Wait for the reconciler.
				later := now.Add(time.Hour)
				sp := subParams(sub, now)
				sp.IncompleteExpiresAt = &later
				if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
					return err
				}
				return s.sched.ScheduleTx(ctx, tx, Work{Kind: WorkExpireIncomplete, ID: sub.ID, At: later})
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		next, err := fireSub(ctx, sub.Status, statemachine.SubscriptionExpireIncomplete)
		if err != nil {
			return err
		}
		sp := subParams(sub, now)
		sp.Status, sp.NextRenewalAt, sp.IncompleteExpiresAt = next, nil, nil
		if _, err := s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		for _, inv := range open {
			locked, err := s.q(tx).LockInvoice(ctx, inv.ID)
			if err != nil {
				return err
			}
			if err := s.voidInvoice(ctx, tx, locked, now); err != nil {
				return err
			}
		}
		return s.emit(ctx, tx, EvtSubscriptionIncompleteExpired, Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}, now, nil)
	})
}

// voidInvoice voids an invoice nothing was collected on and reverses its receivable. The customer's own
// credit an open invoice spent is not money collected: it goes back to their balance. Credit notes that
// lowered the invoice are undone with it (the invoice they lowered no longer stands).
func (s *Service) voidInvoice(ctx context.Context, tx pgx.Tx, inv store.Invoice, now time.Time) error {
	open := inv.Status == string(statemachine.InvoiceOpen)
	applied := decimal.Zero
	if open && inv.AmountPaid.IsPositive() {
		legs, err := s.q(tx).LedgerTransactionEntries(ctx, store.LedgerTransactionEntriesParams{Kind: "credit_applied", Reference: inv.ID})
		if err != nil {
			return err
		}
		for _, l := range legs {
			if l.Account == CreditAccount(inv.CustomerID) {
				applied = applied.Add(l.Amount)
			}
		}
	}
	collected := inv.AmountPaid.Sub(applied)
	next, err := statemachine.FireInvoice(ctx, statemachine.InvoiceStatus(inv.Status), statemachine.InvoiceVoid, statemachine.InvoiceFacts{AmountPaidIsZero: collected.IsZero()})
	if err != nil {
		return err
	}
	if _, err := s.q(tx).InFlightAttempt(ctx, inv.ID); err == nil {
		return apperr.Conflict("payment_in_flight", "invoice %s has a payment attempt whose outcome is not yet known", inv.ID)
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	p := invoiceParams(inv)
	p.Status, p.VoidedAt, p.NextAttemptAt, p.AmountPaid = string(next), &now, nil, collected
	if _, err := s.q(tx).UpdateInvoice(ctx, p); err != nil {
		return err
	}
	if open && inv.Total.IsPositive() {
		// Reverse the finalization leg by leg: revenue, money off and tax owed all return to where they were.
		legs, err := s.q(tx).LedgerTransactionEntries(ctx, store.LedgerTransactionEntriesParams{Kind: "invoice_finalized", Reference: inv.ID})
		if err != nil {
			return err
		}
		entries := make([]Entry, len(legs))
		for i, l := range legs {
			entries[i] = Entry{Account: l.Account, Currency: l.Currency, Amount: l.Amount.Neg()}
		}
		if inv.AmountCredited.IsPositive() {
			// The credit notes took this much off the receivable; the reversal above gives back the whole
			// total, so they are reversed too, or the customer would be left owed their amount.
			entries = append(entries,
				Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: inv.AmountCredited},
				Entry{Account: AccountCreditNotes, Currency: inv.Currency, Amount: inv.AmountCredited.Neg()})
		}
		if err := s.post(ctx, tx, "invoice_voided", inv.ID, inv.CustomerID, "void "+inv.ID, now, entries...); err != nil {
			return err
		}
	}
	if applied.IsPositive() {
		if err := s.post(ctx, tx, "credit_returned", inv.ID, inv.CustomerID, "credit returned by the void of "+inv.ID, now,
			Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: applied},
			Entry{Account: CreditAccount(inv.CustomerID), Currency: inv.Currency, Amount: applied.Neg()}); err != nil {
			return err
		}
	}
	return s.emit(ctx, tx, EvtInvoiceVoided, Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}, now, nil)
}
