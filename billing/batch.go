package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// BatchResult says what one RenewBatch did.
type BatchResult struct {
	Claimed int // due subscriptions claimed
	Batched int // renewed by the set-based path
	Single  int // handed to Renew one by one
	Charged int // charges sent to a gateway
}

// RenewBatch renews up to max due subscriptions as one batch (docs/performance.md, docs/scaling.md):
//
//  1. One transaction claims the oldest due subscriptions (FOR UPDATE SKIP LOCKED, so concurrent batches on
//     any number of replicas never overlap) and, for the plain ones, advances their periods and writes
//     their invoices, lines, ledger postings, events and pending attempts with one statement per table.
//     It commits before anything is charged (no transaction spans a gateway call).
//  2. The charges go out concurrently, each through its gateway's guard (the bulkhead bounds them).
//  3. The outcomes are recorded a group per transaction: a plain success set-based, anything else
//     (declines, unknown outcomes, rows that moved meanwhile) by the same code as a single charge's.
//
// The fences are the single renewal's: the subscription's lock and next_renewal_at say it is due, the
// (subscription, period) unique index allows one invoice, and each attempt's order id and idempotency key
// are deterministic. A process killed anywhere leaves committed pending attempts that the sweeper's
// lookups resolve (a charge the gateway never saw is resent under the same order id).
//
// A subscription that is not plain (cancel at period end, a pending plan change, a trial ending, not
// active, customer credit to spend, a coupon, no chargeable key, dunning paused, nothing to charge) is renewed by
// Renew after the batch commits, exactly as before.
func (s *Service) RenewBatch(ctx context.Context, max int) (BatchResult, error) {
	var res BatchResult
	var singles []string
	var charges []batchCharge
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		singles, charges = nil, nil
		now := s.clock.Now()
		subs, err := s.q(tx).ClaimDueRenewals(ctx, store.ClaimDueRenewalsParams{Now: &now, Max: int32(max)})
		if err != nil {
			return fmt.Errorf("claim due renewals: %w", err)
		}
		res.Claimed = len(subs)
		if len(subs) == 0 {
			return nil
		}
		plain, rest, err := s.plainRenewals(ctx, tx, subs, now)
		if err != nil {
			return err
		}
		singles = rest
		if len(plain) == 0 {
			return nil
		}
		charges, err = s.writeBatch(ctx, tx, plain, now)
		return err
	})
	if err != nil {
		return res, err
	}
	res.Batched = len(charges)
	if len(charges) > 0 {
		if h := s.hooks.BatchCommitted; h != nil {
			if err := h(attemptIDs(charges)); err != nil {
				return res, err
			}
		}
		sent, err := s.chargeBatch(ctx, charges)
		res.Charged = sent
		if err != nil {
			return res, err
		}
	}
	for _, id := range singles {
		if _, err := s.Renew(ctx, id); err != nil {
			return res, fmt.Errorf("renew %s: %w", id, err)
		}
		res.Single++
	}
	return res, nil
}

// plainRenewal is a claimed subscription the set-based path renews.
type plainRenewal struct {
	sub        store.Subscription
	key        KeyRef
	start, end time.Time
	draft      draftInvoice
	comp       Composition // Compose's, as createFinalizedInvoice composes (no credit: see plainRenewals)
}

// plainRenewals splits the claimed subscriptions into those the batch renews and those Renew does.
func (s *Service) plainRenewals(ctx context.Context, tx pgx.Tx, subs []store.Subscription, now time.Time) ([]plainRenewal, []string, error) {
	var singles []string
	var cands []store.Subscription
	planIDs := map[string]bool{}
	for _, sub := range subs {
		if sub.Status != string(statemachine.SubscriptionActive) || sub.CancelAtPeriodEnd || sub.PendingPlanID != nil ||
			dunningPaused(sub, now) || sub.NextRenewalAt == nil || sub.NextRenewalAt.After(now) {
			singles = append(singles, sub.ID)
			continue
		}
		cands = append(cands, sub)
		planIDs[sub.PlanID] = true
	}
	if len(cands) == 0 {
		return nil, singles, nil
	}
	plans, err := s.q(tx).PlansByID(ctx, keysOf(planIDs))
	if err != nil {
		return nil, nil, fmt.Errorf("plans of a batch: %w", err)
	}
	byID := map[string]store.Plan{}
	for _, p := range plans {
		byID[p.ID] = p
	}
	customers := map[string]bool{}
	credit := make([]string, 0, len(cands))
	for _, sub := range cands {
		if !customers[sub.CustomerID] {
			customers[sub.CustomerID] = true
			credit = append(credit, CreditAccount(sub.CustomerID))
		}
	}
	keys, err := s.vault.ChargeableKeys(ctx, tx, keysOf(customers))
	if err != nil {
		return nil, nil, err
	}
	// Credit on the balance is spent before a card is charged (applyCredit): such a renewal goes alone.
	withCredit, err := s.q(tx).AccountsWithBalance(ctx, credit)
	if err != nil {
		return nil, nil, fmt.Errorf("credit of a batch: %w", err)
	}
	hasCredit := map[string]bool{}
	for _, a := range withCredit {
		hasCredit[a] = true
	}
	// A coupon prices (and counts) its period through periodDiscount: such a renewal goes alone.
	candIDs := make([]string, len(cands))
	for i, sub := range cands {
		candIDs[i] = sub.ID
	}
	discounted, err := s.q(tx).SubscriptionsWithActiveDiscount(ctx, candIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("coupons of a batch: %w", err)
	}
	hasCoupon := map[string]bool{}
	for _, id := range discounted {
		hasCoupon[id] = true
	}
	rates, err := s.taxRatesFor(ctx, tx, keysOf(customers), plans)
	if err != nil {
		return nil, nil, err
	}
	// A customer with two subscriptions due in one batch gets one of them batched: invoices of one
	// customer are finalized one at a time, as they would be alone.
	seen := map[string]bool{}
	var plain []plainRenewal
	for _, sub := range cands {
		plan, okPlan := byID[sub.PlanID]
		key, okKey := keys[sub.CustomerID]
		if !okPlan || !okKey || hasCredit[CreditAccount(sub.CustomerID)] || hasCoupon[sub.ID] || seen[sub.CustomerID] {
			singles = append(singles, sub.ID)
			continue
		}
		unit, count := Interval(plan.Interval), int(plan.IntervalCount)
		start, anchor := sub.CurrentPeriodEnd, sub.BillingAnchor
		end := PeriodEnd(anchor, unit, count, periodIndexAt(anchor, unit, count, start))
		if !end.After(start) {
			end = PeriodEnd(start, unit, count, 1)
		}
		// periodDraft's draft, with taxRateFor's rate: the customer's, else the plan's.
		d := periodInvoice(sub, plan, "renewal", start, end)
		rate := rates.customer[sub.CustomerID]
		if rate == nil {
			rate = rates.plan[plan.ID]
		}
		for i := range d.Lines {
			d.Lines[i].TaxRate = rate
		}
		c, err := Compose(ComposeInput{Currency: d.Currency, Lines: d.Lines})
		if err != nil {
			return nil, nil, err
		}
		if !c.Total.IsPositive() {
			singles = append(singles, sub.ID) // nothing to charge: paid on finalization, by Renew
			continue
		}
		seen[sub.CustomerID] = true
		plain = append(plain, plainRenewal{sub: sub, key: key, start: start, end: end, draft: d, comp: c})
	}
	return plain, singles, nil
}

// batchRates are the tax rates of a batch: by customer (their own) and by plan.
type batchRates struct{ customer, plan map[string]*TaxRate }

// taxRatesFor is taxRateFor for a batch's customers and plans, in two queries.
func (s *Service) taxRatesFor(ctx context.Context, tx pgx.Tx, customerIDs []string, plans []store.Plan) (batchRates, error) {
	r := batchRates{customer: map[string]*TaxRate{}, plan: map[string]*TaxRate{}}
	own, err := s.q(tx).CustomerTaxRates(ctx, customerIDs)
	if err != nil {
		return r, fmt.Errorf("tax rates of a batch: %w", err)
	}
	ids := map[string]bool{}
	for _, c := range own {
		ids[*c.TaxRateID] = true
	}
	for _, p := range plans {
		if p.TaxRateID != nil {
			ids[*p.TaxRateID] = true
		}
	}
	if len(ids) == 0 {
		return r, nil
	}
	rows, err := s.q(tx).TaxRatesByID(ctx, keysOf(ids))
	if err != nil {
		return r, fmt.Errorf("tax rates of a batch: %w", err)
	}
	byID := map[string]*TaxRate{}
	for _, row := range rows {
		byID[row.ID] = &TaxRate{ID: row.ID, Name: row.Name, Percentage: row.Percentage, Inclusive: row.Inclusive}
	}
	for _, c := range own {
		r.customer[c.ID] = byID[*c.TaxRateID]
	}
	for _, p := range plans {
		if p.TaxRateID != nil {
			r.plan[p.ID] = byID[*p.TaxRateID]
		}
	}
	return r, nil
}

// batchCharge is one committed attempt of a batch, ready to send.
type batchCharge struct {
	att store.PaymentAttempt
	sub string
	// taxFree is the invoice's tax-free part, sent with the charge as every resend of it sends it
	// (chargeRequest).
	taxFree decimal.Decimal
}

func attemptIDs(cs []batchCharge) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.att.ID
	}
	return out
}

// eventRows gathers events for one InsertEvents.
type eventRows struct{ p store.InsertEventsParams }

func (e *eventRows) add(typ string, refs Refs, data map[string]any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	e.p.Ids = append(e.p.Ids, ids.New("evt"))
	e.p.Types = append(e.p.Types, typ)
	e.p.CustomerIds = append(e.p.CustomerIds, refs.CustomerID)
	e.p.SubscriptionIds = append(e.p.SubscriptionIds, refs.SubscriptionID)
	e.p.InvoiceIds = append(e.p.InvoiceIds, refs.InvoiceID)
	e.p.AttemptIds = append(e.p.AttemptIds, refs.AttemptID)
	e.p.Datas = append(e.p.Datas, string(raw))
	return nil
}

// postings gathers balanced ledger transactions of one kind for one PostLedgerTransactions.
type postings struct {
	p store.PostLedgerTransactionsParams
}

func (l *postings) add(reference, customerID, description string, entries ...Entry) error {
	sum := decimal.Zero
	for _, e := range entries {
		if !money.Round(e.Amount, e.Currency).Equal(e.Amount) {
			return fmt.Errorf("ledger %s/%s: %s is not a whole amount of %s", l.p.Kind, reference, e.Amount, e.Currency)
		}
		if e.Currency != entries[0].Currency {
			return fmt.Errorf("ledger %s/%s: one currency per batched transaction", l.p.Kind, reference)
		}
		sum = sum.Add(e.Amount)
	}
	if !sum.IsZero() {
		return fmt.Errorf("ledger %s/%s does not balance (%s)", l.p.Kind, reference, sum)
	}
	l.p.Refs = append(l.p.Refs, reference)
	l.p.CustomerIds = append(l.p.CustomerIds, customerID)
	l.p.Descriptions = append(l.p.Descriptions, description)
	for _, e := range entries {
		if e.Amount.IsZero() {
			continue
		}
		l.p.EntryRefs = append(l.p.EntryRefs, reference)
		l.p.Accounts = append(l.p.Accounts, e.Account)
		l.p.Currencies = append(l.p.Currencies, e.Currency)
		l.p.Amounts = append(l.p.Amounts, e.Amount)
	}
	return nil
}

// writeBatch renews the plain subscriptions with one statement per table, in the caller's transaction.
// What each row holds is what Renew writes for the same subscription (periodInvoice, finalizeInvoice,
// newAttempt); only the invoice's version differs (born finalized, not updated twice).
func (s *Service) writeBatch(ctx context.Context, tx pgx.Tx, plain []plainRenewal, now time.Time) ([]batchCharge, error) {
	status, err := statemachine.FireInvoice(ctx, statemachine.InvoiceDraft, statemachine.InvoiceFinalize, statemachine.InvoiceFacts{AmountPaidIsZero: true})
	if err != nil {
		return nil, err
	}
	n := len(plain)
	subs := store.AdvanceSubscriptionPeriodsParams{UpdatedAt: now, Ids: make([]string, 0, n), PeriodStarts: make([]time.Time, 0, n), PeriodEnds: make([]time.Time, 0, n)}
	invs := store.InsertFinalizedInvoicesParams{Kind: "renewal", Status: string(status), CreatedAt: now}
	var lines store.InsertInvoiceLinesParams
	ledger := postings{p: store.PostLedgerTransactionsParams{Kind: "invoice_finalized", CreatedAt: now}}
	var events eventRows
	next := now.Add(lookupDelay(0))
	atts := store.InsertPendingAttemptsParams{NextLookupAt: &next, CreatedAt: now}
	charges := make([]batchCharge, 0, n)
	for _, r := range plain {
		sub, d, c := r.sub, r.draft, r.comp
		total := c.Total
		invID := ids.New("inv")
		subs.Ids = append(subs.Ids, sub.ID)
		subs.PeriodStarts = append(subs.PeriodStarts, r.start)
		subs.PeriodEnds = append(subs.PeriodEnds, r.end)

		invs.Ids = append(invs.Ids, invID)
		invs.CustomerIds = append(invs.CustomerIds, sub.CustomerID)
		invs.SubscriptionIds = append(invs.SubscriptionIds, sub.ID)
		invs.Currencies = append(invs.Currencies, d.Currency)
		invs.PeriodStarts = append(invs.PeriodStarts, r.start)
		invs.PeriodEnds = append(invs.PeriodEnds, r.end)
		invs.Subtotals = append(invs.Subtotals, c.Subtotal)
		invs.Totals = append(invs.Totals, total)
		invs.Discounts = append(invs.Discounts, c.Discount)
		invs.SupplyValues = append(invs.SupplyValues, c.SupplyValue)
		invs.Taxes = append(invs.Taxes, c.Tax)
		invs.TaxFrees = append(invs.TaxFrees, c.TaxFree)
		for _, l := range c.Lines {
			if l.Discount != nil && !l.DiscountAmount.IsZero() {
				return nil, fmt.Errorf("subscription %s: a discounted line is not batched", sub.ID) // periodInvoice makes none
			}
			lines.InvoiceIds = append(lines.InvoiceIds, invID)
			lines.Descriptions = append(lines.Descriptions, l.Description)
			lines.PlanIds = append(lines.PlanIds, l.PlanID)
			lines.Quantities = append(lines.Quantities, int32(l.Quantity))
			lines.UnitAmounts = append(lines.UnitAmounts, l.UnitAmount)
			lines.Amounts = append(lines.Amounts, l.Amount)
			lines.PeriodStarts = append(lines.PeriodStarts, l.PeriodStart)
			lines.PeriodEnds = append(lines.PeriodEnds, l.PeriodEnd)
			lines.Discounts = append(lines.Discounts, l.DiscountAmount)
			lines.Taxes = append(lines.Taxes, l.Tax)
			lines.SupplyValues = append(lines.SupplyValues, l.SupplyValue)
			lines.LineTotals = append(lines.LineTotals, l.Total)
			if l.TaxRate != nil {
				lines.TaxRateIds = append(lines.TaxRateIds, l.TaxRate.ID)
				lines.TaxPercentages = append(lines.TaxPercentages, l.TaxRate.Percentage)
				lines.TaxInclusives = append(lines.TaxInclusives, l.TaxRate.Inclusive)
			} else {
				lines.TaxRateIds = append(lines.TaxRateIds, "")
				lines.TaxPercentages = append(lines.TaxPercentages, decimal.Zero)
				lines.TaxInclusives = append(lines.TaxInclusives, false)
			}
		}
		// finalizeInvoice's posting, leg for leg.
		if err := ledger.add(invID, sub.CustomerID, "invoice "+invID,
			Entry{Account: ReceivableAccount(sub.CustomerID), Currency: d.Currency, Amount: c.Total},
			Entry{Account: AccountRevenue, Currency: d.Currency, Amount: c.SupplyValue.Add(c.DiscountSupply).Neg()},
			Entry{Account: AccountDiscounts, Currency: d.Currency, Amount: c.DiscountSupply},
			Entry{Account: AccountTaxOwed, Currency: d.Currency, Amount: c.Tax.Neg()}); err != nil {
			return nil, err
		}
		refs := Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID, InvoiceID: invID}
		amount := money.String(total, d.Currency)
		if err := events.add(EvtInvoiceCreated, refs, map[string]any{"kind": "renewal", "total": amount, "currency": d.Currency}); err != nil {
			return nil, err
		}
		if err := events.add(EvtInvoiceFinalized, refs, map[string]any{"amount_due": amount, "currency": d.Currency}); err != nil {
			return nil, err
		}
		if err := events.add(EvtSubscriptionRenewed, refs, map[string]any{"period_start": r.start, "period_end": r.end}); err != nil {
			return nil, err
		}
		// The order id and idempotency key are newAttempt's: deterministic per attempt, reused on every resend.
		orderID := fmt.Sprintf("%s-%d", invID, 1)
		att := store.PaymentAttempt{ID: ids.New("pay"), InvoiceID: invID, CustomerID: sub.CustomerID, BillingKeyID: &r.key.ID,
			Gateway: r.key.Gateway, Seq: 1, OrderID: orderID, IdempotencyKey: "charge-" + orderID, Amount: total, Currency: d.Currency,
			Status: string(statemachine.AttemptPending), NextLookupAt: &next, CreatedAt: now}
		atts.Ids = append(atts.Ids, att.ID)
		atts.InvoiceIds = append(atts.InvoiceIds, invID)
		atts.CustomerIds = append(atts.CustomerIds, sub.CustomerID)
		atts.BillingKeyIds = append(atts.BillingKeyIds, r.key.ID)
		atts.Gateways = append(atts.Gateways, r.key.Gateway)
		atts.OrderIds = append(atts.OrderIds, orderID)
		atts.IdempotencyKeys = append(atts.IdempotencyKeys, att.IdempotencyKey)
		atts.Amounts = append(atts.Amounts, total)
		atts.Currencies = append(atts.Currencies, d.Currency)
		charges = append(charges, batchCharge{att: att, sub: sub.ID, taxFree: c.TaxFree})
	}
	q := s.q(tx)
	if k, err := q.AdvanceSubscriptionPeriods(ctx, subs); err != nil || int(k) != n {
		return nil, fmt.Errorf("advance %d subscriptions (%d moved): %w", n, k, errOr(err, errConcurrentUpdate))
	}
	if err := q.InsertInvoiceLines(ctx, lines); err != nil {
		return nil, fmt.Errorf("insert invoice lines: %w", err)
	}
	if _, err := q.PostLedgerTransactions(ctx, ledger.p); err != nil {
		return nil, fmt.Errorf("post %d receivables: %w", n, err)
	}
	events.p.OccurredAt = now
	if err := q.InsertEvents(ctx, events.p); err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	if err := s.sinkBatch(ctx, tx, events.p); err != nil {
		return nil, fmt.Errorf("event sink: %w", err)
	}
	// The invoices' numbers, taken as finalizeInvoice takes one: from the counter row, whose lock every
	// finalizer shares until its commit. A batch takes it once, as late as it can: the rows
	// without a foreign key to the invoice (lines, ledger, events) are written before it.
	prefix := s.prefix + SeriesInvoice
	last, err := q.TakeDocumentNumbers(ctx, store.TakeDocumentNumbersParams{Prefix: prefix, N: int64(n)})
	if err != nil {
		return nil, fmt.Errorf("take %d %s numbers: %w", n, prefix, err)
	}
	invs.Numbers = make([]string, n)
	for i := range invs.Numbers {
		invs.Numbers[i] = documentNumber(prefix, last-int64(n)+1+int64(i))
	}
	if k, err := q.InsertFinalizedInvoices(ctx, invs); err != nil || int(k) != n {
		return nil, fmt.Errorf("insert %d invoices: %w", n, errOr(err, errConcurrentUpdate))
	}
	if err := q.InsertPendingAttempts(ctx, atts); err != nil {
		return nil, fmt.Errorf("insert %d attempts: %w", n, err)
	}
	return charges, nil
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// sentCharge is a batch charge and what its gateway answered.
type sentCharge struct {
	att store.PaymentAttempt
	sub string
	out gateway.Outcome
	err error // the request was certainly not sent
}

// chargeBatch sends the batch's committed attempts concurrently (no transaction is open) and records the
// outcomes in groups. A failing hook stops the batch where a crash would: nothing more is recorded.
func (s *Service) chargeBatch(ctx context.Context, charges []batchCharge) (int, error) {
	keyIDs := make([]string, 0, len(charges))
	for _, c := range charges {
		keyIDs = append(keyIDs, *c.att.BillingKeyID)
	}
	tokens, tokenErrs, err := s.vault.Tokens(ctx, s.pool, keyIDs)
	if err != nil {
		return 0, err
	}
	// Counted before any request leaves, as charge counts a single send (MarkAttemptSent): an attempt
	// with send_count = 0 provably never reached the gateway.
	sentAt := s.clock.Now()
	if err := s.q(s.pool).MarkAttemptsSent(ctx, store.MarkAttemptsSentParams{SentAt: &sentAt, Ids: attemptIDs(charges)}); err != nil {
		return 0, fmt.Errorf("record the sends of %d attempts: %w", len(charges), err)
	}
	results := make([]sentCharge, len(charges))
	var wg sync.WaitGroup
	var hookMu sync.Mutex
	var hookErr error
	for i, c := range charges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			att := c.att
			results[i].att, results[i].sub = att, c.sub
			fail := func(err error) {
				hookMu.Lock()
				defer hookMu.Unlock()
				if hookErr == nil {
					hookErr = err
				}
			}
			if h := s.hooks.BeforeCharge; h != nil {
				if err := h(att.ID); err != nil {
					fail(err)
					return
				}
			}
			tok, ok := tokens[*att.BillingKeyID]
			if !ok {
				results[i].err = fmt.Errorf("billing key %s: %w", *att.BillingKeyID, tokenErrs[*att.BillingKeyID])
				return
			}
			out, err := s.chargeWith(ctx, att, tok, c.taxFree)
			results[i].out, results[i].err = out, err
			if err == nil {
				if h := s.hooks.AfterCharge; h != nil {
					if err := h(att.ID, out); err != nil {
						fail(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	sent := 0
	for _, r := range results {
		if r.err == nil && r.out.Kind != "" {
			sent++
		}
	}
	if hookErr != nil {
		return sent, hookErr
	}
	var answered []sentCharge
	for _, r := range results {
		if r.err != nil {
			if _, err := s.recordNotSent(ctx, r.att.ID, r.err); err != nil {
				return sent, err
			}
			continue
		}
		answered = append(answered, r)
	}
	for i := 0; i < len(answered); i += outcomeGroup {
		group := answered[i:min(i+outcomeGroup, len(answered))]
		if err := s.recordGroup(ctx, group); err != nil {
			s.log.Warn("recording a group of outcomes failed; recording them one by one", "attempts", len(group), "err", err)
			for _, r := range group {
				if _, err := s.recordOutcome(ctx, r.att.ID, r.out); err != nil {
					return sent, err
				}
			}
		}
		if h := s.hooks.AfterRecord; h != nil {
			for _, r := range group {
				if err := h(r.att.ID); err != nil {
					return sent, err
				}
			}
		}
	}
	return sent, nil
}

// outcomeGroup is how many outcomes one transaction records.
const outcomeGroup = 250

// chargeWith is charge with the token already opened. The batch's attempt is the whole invoice, so its
// tax-free share is the invoice's tax-free part.
func (s *Service) chargeWith(ctx context.Context, att store.PaymentAttempt, tok KeyToken, taxFree decimal.Decimal) (gateway.Outcome, error) {
	gw, ok := s.gateways.Get(att.Gateway)
	if !ok {
		return gateway.Outcome{}, fmt.Errorf("%w: gateway %q is not enabled", gateway.ErrTryLater, att.Gateway)
	}
	return gw.Charge(ctx, chargeRequest(att, tok, taxFree))
}

// recordGroup records a group of answered charges in one transaction, under the locks every writer takes
// in one order (subscriptions, invoices, attempts; here each step in id order). A plain success (the
// attempt still pending, its invoice open and owing exactly the attempt's amount, its subscription active)
// is recorded set-based; anything else goes through recordOutcomeTx, the single charge's code.
func (s *Service) recordGroup(ctx context.Context, group []sentCharge) error {
	var observe []func()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		observe = observe[:0]
		now := s.clock.Now()
		q := s.q(tx)
		attIDs := make([]string, len(group))
		invIDs := make([]string, len(group))
		for i, r := range group {
			attIDs[i], invIDs[i] = r.att.ID, r.att.InvoiceID
		}
		subIDs := make([]string, len(group))
		for i, r := range group {
			subIDs[i] = r.sub
		}
		subRows, err := q.LockSubscriptionsByID(ctx, subIDs)
		if err != nil {
			return err
		}
		invRows, err := q.LockInvoicesByID(ctx, invIDs)
		if err != nil {
			return err
		}
		attRows, err := q.LockAttemptsByID(ctx, attIDs)
		if err != nil {
			return err
		}
		subs := map[string]store.Subscription{}
		for _, r := range subRows {
			subs[r.ID] = r
		}
		invs := map[string]store.Invoice{}
		for _, r := range invRows {
			invs[r.ID] = r
		}
		atts := map[string]store.PaymentAttempt{}
		for _, r := range attRows {
			atts[r.ID] = r
		}
		var fast []sentCharge
		var slow []sentCharge
		for _, r := range group {
			att, inv := atts[r.att.ID], invs[r.att.InvoiceID]
			sub, okSub := subs[deref(inv.SubscriptionID)]
			if r.out.Kind == gateway.Succeeded && att.Status == string(statemachine.AttemptPending) && !att.Backup &&
				inv.Status == string(statemachine.InvoiceOpen) && inv.AmountDue.Equal(att.Amount) &&
				(r.out.Amount.IsZero() || r.out.Amount.Equal(att.Amount)) &&
				okSub && sub.Status == string(statemachine.SubscriptionActive) {
				r.att = att
				fast = append(fast, r)
				continue
			}
			slow = append(slow, r)
		}
		if len(fast) > 0 {
			if err := s.recordSuccesses(ctx, tx, fast, now); err != nil {
				return err
			}
			for _, r := range fast {
				r := r
				observe = append(observe, func() { s.metrics.observeOutcome(r.att.Gateway, r.att.Status, r.out) })
			}
		}
		for _, r := range slow {
			_, obs, err := s.recordOutcomeTx(ctx, tx, r.att.ID, r.out, now)
			if err != nil {
				return err
			}
			if obs != nil {
				observe = append(observe, obs)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range observe {
		o()
	}
	return nil
}

// recordSuccesses is applyPayment and applyInvoicePayment for a group of plain successes, one statement
// per table. The caller holds the rows' locks and checked each is plain.
func (s *Service) recordSuccesses(ctx context.Context, tx pgx.Tx, group []sentCharge, now time.Time) error {
	if _, err := statemachine.FireAttempt(ctx, statemachine.AttemptPending, statemachine.AttemptSucceed); err != nil {
		return err
	}
	if _, err := statemachine.FireInvoice(ctx, statemachine.InvoiceOpen, statemachine.InvoicePay, statemachine.InvoiceFacts{AmountPaidIsZero: true}); err != nil {
		return err
	}
	n := len(group)
	atts := store.SucceedPendingAttemptsParams{ResolvedAt: &now, Ids: make([]string, 0, n), PaymentKeys: make([]string, 0, n)}
	invs := store.PayOpenInvoicesParams{PaidAt: &now, Ids: make([]string, 0, n), Amounts: make([]decimal.Decimal, 0, n)}
	ledger := postings{p: store.PostLedgerTransactionsParams{Kind: "payment", CreatedAt: now}}
	var events eventRows
	for _, r := range group {
		att := r.att
		atts.Ids = append(atts.Ids, att.ID)
		atts.PaymentKeys = append(atts.PaymentKeys, r.out.PaymentKey)
		invs.Ids = append(invs.Ids, att.InvoiceID)
		invs.Amounts = append(invs.Amounts, att.Amount)
		if err := ledger.add(att.ID, att.CustomerID, "payment "+att.OrderID,
			Entry{Account: ClearingAccount(att.Gateway), Currency: att.Currency, Amount: att.Amount},
			Entry{Account: ReceivableAccount(att.CustomerID), Currency: att.Currency, Amount: att.Amount.Neg()}); err != nil {
			return err
		}
	}
	// The events in the single path's order: the payment's, then the invoice's.
	for _, r := range group {
		att := r.att
		refs := Refs{CustomerID: att.CustomerID, SubscriptionID: r.sub, InvoiceID: att.InvoiceID, AttemptID: att.ID}
		amount := money.String(att.Amount, att.Currency)
		if err := events.add(EvtPaymentSucceeded, refs, map[string]any{"amount": amount, "currency": att.Currency, "order_id": att.OrderID}); err != nil {
			return err
		}
		refs.AttemptID = ""
		if err := events.add(EvtInvoicePaid, refs, map[string]any{"amount_paid": amount, "currency": att.Currency}); err != nil {
			return err
		}
	}
	q := s.q(tx)
	if k, err := q.SucceedPendingAttempts(ctx, atts); err != nil || int(k) != n {
		return fmt.Errorf("resolve %d attempts: %w", n, errOr(err, errConcurrentUpdate))
	}
	if _, err := q.PostLedgerTransactions(ctx, ledger.p); err != nil {
		return fmt.Errorf("post %d payments: %w", n, err)
	}
	if k, err := q.PayOpenInvoices(ctx, invs); err != nil || int(k) != n {
		return fmt.Errorf("pay %d invoices: %w", n, errOr(err, errConcurrentUpdate))
	}
	events.p.OccurredAt = now
	if err := q.InsertEvents(ctx, events.p); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	if err := s.sinkBatch(ctx, tx, events.p); err != nil {
		return fmt.Errorf("event sink: %w", err)
	}
	return nil
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
