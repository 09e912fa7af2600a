package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
	"github.com/dunningworks/billing/statemachine"
)

// ChangeTiming says when a plan change takes effect.
type ChangeTiming string

const (
	TimingImmediate ChangeTiming = "immediate"  // now, prorated by the seconds left in the period
	TimingPeriodEnd ChangeTiming = "period_end" // stored as the pending change; the renewal applies it
)

// ProrationBehavior says whether an immediate change is prorated.
type ProrationBehavior string

const (
	ProrationCreate ProrationBehavior = "create_prorations"
	ProrationNone   ProrationBehavior = "none" // switch now, settle nothing; the next renewal charges the new price
)

// Events of plan changes and customer credit, besides the subscription.* ones in events.go.
const (
	EvtCustomerCreditGranted = "customer.credit_granted"
	EvtInvoiceCreditApplied  = "invoice.credit_applied"
)

// PlanChange is the input of ChangePlan.
type PlanChange struct {
	PlanID string
	// Quantity 0 keeps the subscription's quantity.
	Quantity int
	// Timing "" decides by direction: a change that costs more per period (an upgrade) or the same is
	// immediate, one that costs less (a downgrade) waits for the period end.
	Timing ChangeTiming
	// Proration "" is ProrationCreate.
	Proration ProrationBehavior
	// ExpectVersion, when not 0, is the version the caller last saw (If-Match): a mismatch is 412.
	ExpectVersion int
	// Coupon (an id or code), when set, becomes the subscription's discount with this change: it prices the
	// remaining time of an immediate change (counting as one of its periods) and the periods after it.
	Coupon string
}

// PlanChanged is what ChangePlan did. Invoice is the proration invoice charged now (nil when nothing is
// charged now); Credit is what an immediate downgrade put on the customer's balance.
type PlanChanged struct {
	Subscription Subscription   `json:"subscription"`
	Invoice      *Invoice       `json:"invoice"`
	Credit       *CreditGranted `json:"credit"`
	Charge       ChargeResult   `json:"-"`
}

// CreditGranted is credit put on the customer's balance; the next invoices in its currency spend it.
type CreditGranted struct {
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	InvoiceID string `json:"invoice_id"` // the proration invoice (negative total) that records the lines
}

// changeable are the statuses whose plan may change. A delinquent subscription settles what it owes
// first: crediting unused time of a period that was never paid would hand out money.
func changeable(status string) bool {
	switch statemachine.SubscriptionStatus(status) {
	case statemachine.SubscriptionActive, statemachine.SubscriptionTrialing:
		return true
	}
	return false
}

// ChangePlan moves a subscription to another plan or quantity. An immediate change in an active
// subscription is prorated: a positive net is a proration invoice finalized and charged now through the
// ordinary charge path (a decline walks dunning like any invoice), a negative net is credit on the
// customer's balance that the next invoices spend. A trialing subscription switches without proration:
// nothing was paid for the trial.
func (s *Service) ChangePlan(ctx context.Context, subID string, in PlanChange) (PlanChanged, error) {
	var v apperr.Validation
	if in.PlanID == "" {
		v.Add("plan_id", "is required")
	}
	if in.Quantity != 0 && (in.Quantity < 1 || in.Quantity > 100000) {
		v.Add("quantity", "must be from 1 to 100000")
	}
	switch in.Timing {
	case "", TimingImmediate, TimingPeriodEnd:
	default:
		v.Add("timing", "must be immediate or period_end")
	}
	switch in.Proration {
	case "":
		in.Proration = ProrationCreate
	case ProrationCreate, ProrationNone:
	default:
		v.Add("proration", "must be create_prorations or none")
	}
	if err := v.Err(); err != nil {
		return PlanChanged{}, err
	}
	next, err := s.getPlan(ctx, s.pool, in.PlanID)
	if apperr.IsKind(err, apperr.KindNotFound) {
		return PlanChanged{}, apperr.Invalid("plan_id", "plan %s does not exist", in.PlanID)
	}
	if err != nil {
		return PlanChanged{}, err
	}

	var att store.PaymentAttempt
	var invID string
	var credit *CreditGranted
	var changed store.Subscription // the row as this change left it: the answer describes it, not a later read
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.lockSubscriptionFor(ctx, tx, subID, in.ExpectVersion)
		if err != nil {
			return err
		}
		if !changeable(sub.Status) {
			return notAllowedIn(sub, "plan_change_not_allowed", "the plan of a %s subscription cannot change", sub.Status)
		}
		old, err := s.q(tx).GetPlan(ctx, sub.PlanID)
		if err != nil {
			return err
		}
		if old.Currency != next.Currency {
			return &apperr.Error{Kind: apperr.KindValidation, Code: "plan_currency_mismatch",
				Message: fmt.Sprintf("plan %s is in %s; the subscription pays in %s", next.ID, next.Currency, old.Currency),
				Fields:  []apperr.FieldError{{Field: "plan_id", Message: "must be in " + old.Currency}}}
		}
		if old.Interval != next.Interval || old.IntervalCount != next.IntervalCount {
			return &apperr.Error{Kind: apperr.KindValidation, Code: "plan_interval_mismatch",
				Message: fmt.Sprintf("plan %s bills every %d %s; the subscription every %d %s", next.ID, next.IntervalCount, next.Interval, old.IntervalCount, old.Interval),
				Fields:  []apperr.FieldError{{Field: "plan_id", Message: fmt.Sprintf("must bill every %d %s", old.IntervalCount, old.Interval)}}}
		}
		// Plans of one subscription share a currency, so this refuses only a combination that predates
		// the check at subscribe and default-key time; moving onto another plan still must not extend it.
		if key, err := s.vault.ChargeableKey(ctx, tx, sub.CustomerID); err != nil && !errors.Is(err, ErrNoChargeableKey) {
			return err
		} else if err == nil && next.ID != sub.PlanID {
			if err := s.keyTakesCurrency(key, next.Currency, "plan_id",
				"plan %s is billed in %s, which the %s gateway of the customer's default billing key %s does not charge in; register a card at a gateway that does first",
				next.ID, next.Currency, key.Gateway, key.ID); err != nil {
				return err
			}
		}
		qty := int32(in.Quantity)
		if qty == 0 {
			qty = sub.Quantity
		}
		refs := Refs{CustomerID: sub.CustomerID, SubscriptionID: sub.ID}
		sp := subParams(sub, now)
		if next.ID == sub.PlanID && qty == sub.Quantity {
			if sub.PendingPlanID == nil {
				return &apperr.Error{Kind: apperr.KindValidation, Code: "no_change",
					Message: "the subscription is already on this plan and quantity; nothing to change"}
			}
			// Asking for what is already in force withdraws the change that was waiting for the period end.
			sp.PendingPlanID, sp.PendingQuantity = nil, nil
			if changed, err = s.saveSubscription(ctx, tx, sp); err != nil {
				return err
			}
			return s.emit(ctx, tx, EvtSubscriptionUpdated, refs, now, map[string]any{"why": "pending change withdrawn",
				"withdrawn_plan_id": *sub.PendingPlanID})
		}

		var newDiscount *Discount
		if in.Coupon != "" {
			d, c, err := s.redeem(ctx, tx, sub.ID, in.Coupon, next, now)
			if err != nil {
				return err
			}
			immediate := in.Timing == TimingImmediate || (in.Timing == "" && !(Price{UnitAmount: next.Amount, Quantity: int(qty), Currency: next.Currency}).PerPeriod().LessThan(
				Price{UnitAmount: old.Amount, Quantity: int(sub.Quantity), Currency: old.Currency}.PerPeriod()))
			if immediate && in.Proration != ProrationNone && sub.Status != string(statemachine.SubscriptionTrialing) {
				// It prices the rest of this period: one of its periods, and this period's prorations.
				if err := s.useDiscount(ctx, tx, d, sub.CurrentPeriodStart, now); err != nil {
					return err
				}
				newDiscount = discountTerms(c)
			}
		}
		oldPrice := Price{PlanID: old.ID, Name: old.Name, UnitAmount: old.Amount, Quantity: int(sub.Quantity), Currency: old.Currency}
		newPrice := Price{PlanID: next.ID, Name: next.Name, UnitAmount: next.Amount, Quantity: int(qty), Currency: next.Currency}
		timing := in.Timing
		if timing == "" {
			timing = TimingImmediate
			if newPrice.PerPeriod().LessThan(oldPrice.PerPeriod()) {
				timing = TimingPeriodEnd
			}
		}
		if timing == TimingPeriodEnd {
			sp.PendingPlanID, sp.PendingQuantity = &next.ID, &qty
			if changed, err = s.saveSubscription(ctx, tx, sp); err != nil {
				return err
			}
			return s.emit(ctx, tx, EvtSubscriptionUpdated, refs, now, map[string]any{"why": "plan change scheduled for the period end",
				"pending_plan_id": next.ID, "pending_quantity": qty, "effective_at": sub.CurrentPeriodEnd})
		}

		sp.PlanID, sp.Quantity = next.ID, qty
		sp.PendingPlanID, sp.PendingQuantity = nil, nil
		if changed, err = s.saveSubscription(ctx, tx, sp); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EvtSubscriptionUpdated, refs, now, map[string]any{"why": "plan changed",
			"plan_id": next.ID, "quantity": qty, "previous_plan_id": old.ID, "previous_quantity": sub.Quantity,
			"proration": string(in.Proration)}); err != nil {
			return err
		}
		if in.Proration == ProrationNone || sub.Status == string(statemachine.SubscriptionTrialing) {
			return nil
		}
		p, err := Prorate(oldPrice, newPrice, sub.CurrentPeriodStart, sub.CurrentPeriodEnd, now)
		if err != nil {
			return err
		}
		lines := prorationLines(p, oldPrice, newPrice)
		if err := s.priceProration(ctx, tx, sub, old, next, lines, newDiscount); err != nil {
			return err
		}
		preview, err := Compose(ComposeInput{Currency: p.Currency, Lines: lines})
		if err != nil {
			return err
		}
		net := preview.Total
		if net.IsZero() {
			return nil
		}
		inv, _, err := s.createFinalizedInvoice(ctx, tx, draftInvoice{CustomerID: sub.CustomerID, SubscriptionID: sub.ID,
			Kind: "proration", Currency: p.Currency, PeriodStart: now, PeriodEnd: sub.CurrentPeriodEnd, Lines: lines}, now)
		if err != nil {
			return err
		}
		invID = inv.ID
		if net.IsNegative() {
			// Nothing to charge: the unused time is the customer's, held as credit for the next invoices.
			credit = &CreditGranted{Amount: money.String(net.Neg(), p.Currency), Currency: p.Currency, InvoiceID: inv.ID}
			return s.grantCredit(ctx, tx, inv, net.Neg(), now)
		}
		if inv.Status != string(statemachine.InvoiceOpen) {
			return nil // the customer's credit paid it
		}
		att, _, err = s.newAttempt(ctx, tx, inv, now)
		return err
	})
	if err != nil {
		return PlanChanged{}, err
	}
	var out PlanChanged
	if att.ID != "" {
		if out.Charge, err = s.send(ctx, att); err != nil {
			return out, err
		}
	}
	// Other changes may commit between this change and its charge's outcome; a read now would describe
	// theirs. The answer is the row this change wrote, with what its own charge did to the subscription.
	if out.Subscription, err = s.subscriptionView(ctx, s.pool, afterOwnCharge(changed, out.Charge)); err != nil {
		return out, err
	}
	out.Credit = credit
	if invID != "" && credit == nil {
		inv, err := s.GetInvoice(ctx, invID)
		if err != nil {
			return out, err
		}
		out.Invoice = &inv
	}
	return out, nil
}

// lockSubscriptionFor locks a subscription for a change the API asked for: 404 when it does not exist,
// 412 when the caller's expected version is stale.
func (s *Service) lockSubscriptionFor(ctx context.Context, tx pgx.Tx, subID string, expectVersion int) (store.Subscription, error) {
	sub, err := s.q(tx).LockSubscription(ctx, subID)
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, apperr.NotFound("subscription", subID)
	}
	if err != nil {
		return sub, err
	}
	return sub, checkVersion("subscription", sub.ID, sub.Version, expectVersion)
}

// checkVersion is If-Match's comparison, made under the row's lock: 412 when the caller expected
// another version (0 expects none).
func checkVersion(kind, id string, version int32, expect int) error {
	if expect == 0 || int(version) == expect {
		return nil
	}
	return &apperr.Error{Kind: apperr.KindPrecondition, Code: "precondition_failed",
		Message: fmt.Sprintf("%s %s is at version %d, not %d", kind, id, version, expect),
		Extra:   map[string]any{"version": version}}
}

// notAllowedIn is the 409 for an action the subscription's state does not allow; like the state
// machine's own refusals it names the state and the actions allowed from it.
func notAllowedIn(sub store.Subscription, code, format string, args ...any) error {
	allowed := []string{}
	for _, t := range statemachine.AllowedSubscriptionTriggers(statemachine.SubscriptionStatus(sub.Status)) {
		allowed = append(allowed, string(t))
	}
	e := apperr.Conflict(code, format, args...)
	e.Extra = map[string]any{"state": sub.Status, "allowed": allowed}
	return e
}

// grantCredit records a negative proration invoice's amount as customer credit: its finalization left a
// negative receivable (revenue and tax given back), which the credit account (a liability) now holds.
func (s *Service) grantCredit(ctx context.Context, tx pgx.Tx, inv store.Invoice, amount decimal.Decimal, now time.Time) error {
	if err := s.post(ctx, tx, "proration_credit", inv.ID, inv.CustomerID, "credit for unused time "+inv.ID, now,
		Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: amount},
		Entry{Account: CreditAccount(inv.CustomerID), Currency: inv.Currency, Amount: amount.Neg()}); err != nil {
		return err
	}
	return s.emit(ctx, tx, EvtCustomerCreditGranted, Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}, now,
		map[string]any{"amount": money.String(amount, inv.Currency), "currency": inv.Currency})
}

// applyCredit spends what the composition applied of the customer's credit on a just-finalized open
// invoice: the credit account pays the receivable, and the invoice's amount due drops by it (its lines
// and total stay as they are). The caller read the balance under the customer's credit lock, which is
// still held. Called from createFinalizedInvoice, so every kind of invoice uses credit before a card is
// charged.
func (s *Service) applyCredit(ctx context.Context, tx pgx.Tx, inv store.Invoice, applied decimal.Decimal, now time.Time) (store.Invoice, error) {
	if inv.Status != string(statemachine.InvoiceOpen) || !applied.IsPositive() {
		return inv, nil
	}
	applied = decimal.Min(applied, inv.AmountDue)
	account := CreditAccount(inv.CustomerID)
	if err := s.post(ctx, tx, "credit_applied", inv.ID, inv.CustomerID, "credit applied to "+inv.ID, now,
		Entry{Account: account, Currency: inv.Currency, Amount: applied},
		Entry{Account: ReceivableAccount(inv.CustomerID), Currency: inv.Currency, Amount: applied.Neg()}); err != nil {
		return inv, err
	}
	refs := Refs{CustomerID: inv.CustomerID, SubscriptionID: deref(inv.SubscriptionID), InvoiceID: inv.ID}
	if err := s.emit(ctx, tx, EvtInvoiceCreditApplied, refs, now, map[string]any{"amount": money.String(applied, inv.Currency), "currency": inv.Currency}); err != nil {
		return inv, err
	}
	// Credit counts as paid (amount_paid), so a fully covered invoice is paid like any other. The
	// subscription is left to the caller, which handles a paid invoice already (free plans).
	if err := s.applyInvoicePayment(ctx, tx, nil, inv, applied, now); err != nil {
		return inv, err
	}
	return s.q(tx).GetInvoice(ctx, inv.ID)
}

// afterOwnCharge is the subscription as a change left it (changed) followed by the outcome of the charge it
// made. When nothing else touched the subscription in between, the row the outcome left is exactly that;
// otherwise the change's own plan, quantity and pending change stay, and only what the charge decides —
// the status and the dunning clock — is taken from the outcome. Its version stays the change's, so an
// If-Match built on this answer cannot overwrite the change that came between.
func afterOwnCharge(changed store.Subscription, res ChargeResult) store.Subscription {
	before, after := res.subBefore, res.subAfter
	if before == nil || after == nil || after.ID != changed.ID || before.Version == after.Version {
		return changed // no outcome recorded, or it left the subscription as it was
	}
	if before.Version == changed.Version {
		return *after
	}
	out := changed
	out.Status, out.PastDueSince, out.GraceEndsAt, out.DunningEndsAt = after.Status, after.PastDueSince, after.GraceEndsAt, after.DunningEndsAt
	return out
}
