package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// Finding statuses, and the list filter that means "open findings of any kind".
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
	StatusMismatch = "mismatch"
)

// Resolve actions, spelled as the API takes them (and as a 409 lists them under "allowed").
const (
	// ActionCancelAtGateway refunds, at the gateway, a charge we never asked for. It is the only way the
	// service reverses such a charge: never automatically.
	ActionCancelAtGateway = "cancel_at_gateway"
	// ActionDismiss closes a finding that needs nothing done here (explained, or fixed elsewhere).
	ActionDismiss = "dismiss"
	// ActionApplyRefund books, for a payment of ours, the refunds made at the gateway (its dashboard) that
	// our books lack: credit notes, the ledger, the attempt's and invoice's states (billing.SyncRefunds).
	ActionApplyRefund = "apply_refund"
)

// Finding is one disagreement between a gateway and our books, as support sees it.
type Finding struct {
	ID               string     `json:"id"`
	RunID            string     `json:"run_id"`
	Gateway          string     `json:"gateway"`
	Kind             string     `json:"kind"`
	OrderID          string     `json:"order_id"`
	PaymentKey       *string    `json:"payment_key"`
	AttemptID        *string    `json:"attempt_id"`
	OurAmount        *string    `json:"our_amount"`
	TheirAmount      *string    `json:"their_amount"`
	Currency         *string    `json:"currency"`
	Status           string     `json:"status"`
	Resolution       *string    `json:"resolution"`
	ResolutionReason *string    `json:"resolution_reason"`
	ResolvedBy       *string    `json:"resolved_by"`
	CreatedAt        time.Time  `json:"created_at"`
	ResolvedAt       *time.Time `json:"resolved_at"`
	// AllowedActions are the resolve actions the finding takes in its current state.
	AllowedActions []string `json:"allowed_actions"`
}

func view(r store.ReconciliationFinding) Finding {
	cur := ""
	if r.Currency != nil {
		cur = *r.Currency
	}
	amount := func(d decimal.NullDecimal) *string {
		if !d.Valid {
			return nil
		}
		s := d.Decimal.String()
		if cur != "" && money.ValidCurrency(cur) {
			s = money.String(d.Decimal, cur)
		}
		return &s
	}
	return Finding{ID: r.ID, RunID: r.RunID, Gateway: r.Gateway, Kind: r.Kind, OrderID: r.OrderID, PaymentKey: r.PaymentKey,
		AttemptID: r.AttemptID, OurAmount: amount(r.OurAmount), TheirAmount: amount(r.TheirAmount), Currency: r.Currency,
		Status: r.Status, Resolution: r.Resolution, ResolutionReason: r.ResolutionReason, ResolvedBy: r.ResolvedBy,
		CreatedAt: r.CreatedAt, ResolvedAt: r.ResolvedAt, AllowedActions: allowedActions(r)}
}

// allowedActions: a charge can be canceled at the gateway only when the gateway holds money we have not
// booked; every open finding can be dismissed; a resolved one takes nothing.
func allowedActions(r store.ReconciliationFinding) []string {
	switch {
	case r.Status != StatusOpen:
		return []string{}
	case r.Kind == MissingHere && r.PaymentKey != nil:
		return []string{ActionCancelAtGateway, ActionDismiss}
	case (r.Kind == MissingThere || r.Kind == AmountMismatch) && r.AttemptID != nil && r.OurAmount.Valid && r.TheirAmount.Valid &&
		r.TheirAmount.Decimal.LessThan(r.OurAmount.Decimal):
		// The gateway holds less than we booked for a payment of ours: a refund made there, which can be
		// booked here.
		return []string{ActionApplyRefund, ActionDismiss}
	default:
		return []string{ActionDismiss}
	}
}

// Filter narrows Findings. Status is open, resolved, mismatch (open, any kind) or empty (all).
type Filter struct {
	Status  string
	Kind    string
	Gateway string
}

// Findings lists findings oldest first, a page at a time.
func (s *Service) Findings(ctx context.Context, f Filter, p page.Request) (page.List[Finding], error) {
	var kind, gw *string
	switch f.Kind {
	case "":
	case MissingHere, MissingThere, AmountMismatch:
		kind = &f.Kind
	default:
		return page.List[Finding]{}, apperr.Invalid("kind", "must be %s, %s or %s", MissingHere, MissingThere, AmountMismatch)
	}
	if f.Gateway != "" {
		gw = &f.Gateway
	}
	q := store.New(s.pool)
	max := int32(p.Limit + 1)
	var rows []store.ReconciliationFinding
	var err error
	switch f.Status {
	case "":
		rows, err = q.ListAllFindings(ctx, store.ListAllFindingsParams{Kind: kind, Gateway: gw, AfterTime: p.AfterTime, AfterID: p.AfterID, Max: max})
	case StatusOpen, StatusMismatch, StatusResolved:
		status := f.Status
		if status == StatusMismatch {
			status = StatusOpen
		}
		rows, err = q.ListFindings(ctx, store.ListFindingsParams{Status: status, Kind: kind, Gateway: gw, AfterTime: p.AfterTime, AfterID: p.AfterID, Max: max})
	default:
		return page.List[Finding]{}, apperr.Invalid("status", "must be open, resolved or mismatch")
	}
	if err != nil {
		return page.List[Finding]{}, fmt.Errorf("list findings: %w", err)
	}
	out := make([]Finding, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return page.Build(out, p.Limit, func(f Finding) (time.Time, string) { return f.CreatedAt, f.ID }), nil
}

// Finding returns one finding.
func (s *Service) Finding(ctx context.Context, id string) (Finding, error) {
	r, err := store.New(s.pool).GetFinding(ctx, id)
	if isNoRows(err) {
		return Finding{}, apperr.NotFound("reconciliation_finding", id)
	}
	if err != nil {
		return Finding{}, err
	}
	return view(r), nil
}

// Resolution is support's decision on a finding.
type Resolution struct {
	Action string
	Reason string
}

// Resolve closes an open finding with support's action, audited. cancel_at_gateway first cancels the
// whole payment at the gateway (no database transaction is open during the call; the idempotency key is
// the finding's, so a retried request never refunds twice) and then records the resolution. If the
// gateway refuses, the finding stays open and the error says why.
func (s *Service) Resolve(ctx context.Context, a billing.Actor, id string, r Resolution) (Finding, error) {
	if err := audit.ValidateReason(r.Reason); err != nil {
		return Finding{}, err
	}
	if a.ID == "" || a.Role == "" {
		return Finding{}, errors.New("resolve finding without an actor")
	}
	if r.Action != ActionCancelAtGateway && r.Action != ActionDismiss && r.Action != ActionApplyRefund {
		return Finding{}, apperr.Invalid("action", "must be %s, %s or %s", ActionCancelAtGateway, ActionApplyRefund, ActionDismiss)
	}
	row, err := store.New(s.pool).GetFinding(ctx, id)
	if isNoRows(err) {
		return Finding{}, apperr.NotFound("reconciliation_finding", id)
	}
	if err != nil {
		return Finding{}, err
	}
	if err := checkAllowed(row, r.Action); err != nil {
		return Finding{}, err
	}
	resolution := "dismissed"
	if r.Action == ActionCancelAtGateway {
		if err := s.cancelAtGateway(ctx, row, r.Reason); err != nil {
			return Finding{}, err
		}
		resolution = "canceled_at_gateway"
	}
	if r.Action == ActionApplyRefund {
		if err := s.applyRefund(ctx, row); err != nil {
			return Finding{}, err
		}
		resolution = "refund_applied"
	}
	var out store.ReconciliationFinding
	err = dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		before, err := q.LockFinding(ctx, id)
		if err != nil {
			return err
		}
		if before.Status != StatusOpen {
			// A concurrent request resolved it first; with cancel_at_gateway both asked for the same refund
			// under the same idempotency key, so the gateway refunded once.
			if before.Resolution != nil && *before.Resolution == resolution {
				out = before
				return nil
			}
			return checkAllowed(before, r.Action)
		}
		now := s.clock.Now()
		reason := strings.TrimSpace(r.Reason)
		out, err = q.ResolveFinding(ctx, store.ResolveFindingParams{ID: id, Resolution: &resolution, ResolutionReason: &reason,
			ResolvedBy: &a.ID, ResolvedAt: &now})
		if err != nil {
			return err
		}
		_, err = audit.Write(ctx, tx, audit.Entry{Actor: a.ID, Role: a.Role, Action: "reconciliation." + r.Action,
			TargetType: "reconciliation_finding", TargetID: id, Reason: reason, Before: view(before), After: view(out),
			RequestID: a.RequestID, Origin: a.Origin, At: now})
		return err
	})
	if err != nil {
		return Finding{}, fmt.Errorf("resolve finding %s: %w", id, err)
	}
	s.log.Info("reconciliation finding resolved", "finding_id", id, "action", r.Action, "actor", a.ID, "order_id", out.OrderID)
	return view(out), nil
}

// checkAllowed refuses an action the finding does not take in its state: a 409 naming the state and the
// actions it does allow.
func checkAllowed(r store.ReconciliationFinding, action string) error {
	allowed := allowedActions(r)
	for _, a := range allowed {
		if a == action {
			return nil
		}
	}
	state := r.Status
	if r.Status == StatusOpen {
		state = "open " + r.Kind
	}
	return &apperr.Error{Kind: apperr.KindConflict, Code: "illegal_state_transition",
		Message: fmt.Sprintf("cannot %s reconciliation finding %s: it is %s", action, r.ID, state),
		Extra:   map[string]any{"allowed": allowed, "state": r.Status}}
}

func (s *Service) cancelAtGateway(ctx context.Context, r store.ReconciliationFinding, reason string) error {
	g, ok := s.gateways.Get(r.Gateway)
	if !ok {
		return &apperr.Error{Kind: apperr.KindUnavailable, Code: "gateway_not_enabled",
			Message: fmt.Sprintf("gateway %s is not enabled in this process", r.Gateway)}
	}
	// The whole remaining balance (zero amount): the charge was never ours to keep in any part.
	err := g.Cancel(ctx, *r.PaymentKey, truncate(strings.TrimSpace(reason), 200), decimal.Zero, "reconcile-"+r.ID)
	if err == nil {
		return nil
	}
	// A refund that already happened (an earlier try whose answer was lost, or someone at the gateway's
	// dashboard) is what support asked for.
	if !strings.HasPrefix(r.OrderID, "txn:") {
		if out, lerr := g.Lookup(ctx, r.OrderID); lerr == nil && out.Kind == gateway.Canceled {
			return nil
		}
	}
	if errors.Is(err, gateway.ErrTryLater) {
		return &apperr.Error{Kind: apperr.KindUnavailable, Code: "gateway_unavailable",
			Message: "the gateway cannot take requests now; try again shortly", Err: err}
	}
	return &apperr.Error{Kind: apperr.KindGateway, Code: "gateway_cancel_failed",
		Message: fmt.Sprintf("the gateway did not cancel payment %s", *r.PaymentKey), Err: err}
}

// applyRefund books the gateway's refunds of the finding's payment. It is refused when the gateway
// reports none that the books lack (the disagreement is something else: dismiss it, or look again).
func (s *Service) applyRefund(ctx context.Context, r store.ReconciliationFinding) error {
	if s.refunds == nil {
		return errors.New("reconcile: no refund syncer configured")
	}
	n, err := s.refunds.SyncRefunds(ctx, *r.AttemptID)
	if errors.Is(err, gateway.ErrTryLater) {
		return &apperr.Error{Kind: apperr.KindUnavailable, Code: "gateway_unavailable",
			Message: "the gateway cannot take requests now; try again shortly", Err: err}
	}
	if err != nil {
		return fmt.Errorf("apply refunds of %s: %w", r.OrderID, err)
	}
	if n > 0 {
		return nil
	}
	// Nothing new: it may have been booked already (by a webhook, or a concurrent request). Then the
	// books agree with the gateway and the finding is resolved; otherwise it is not a refund.
	ps, err := s.payments.PaymentsByOrderID(ctx, r.Gateway, []string{r.OrderID})
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.AttemptID == *r.AttemptID && r.TheirAmount.Valid && p.LedgerHeld.Equal(r.TheirAmount.Decimal) {
			return nil
		}
	}
	return &apperr.Error{Kind: apperr.KindConflict, Code: "no_refund_to_apply",
		Message: fmt.Sprintf("the gateway reports no refund of %s that the books lack; dismiss the finding if it is explained", r.OrderID)}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
