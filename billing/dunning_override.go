package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/statemachine"
)

// Per-customer dunning overrides (docs/dunning.md, "Per-customer overrides"). Support may exempt a
// customer from dunning or give them a policy of their own; the policy that applies to a subscription is
// resolved default <- plan's policy <- customer's override, and the console shows which one and why.
//
// An exempt customer is still charged when a subscription renews. What the exemption removes is dunning:
// a failed charge leaves the subscription past_due with its dunning paused (pause.go: no retry, no grace
// end, no final action, no charge of any kind), never suspended, unpaid or canceled for non-payment. Setting
// the exemption pauses the customer's delinquent subscriptions the same way; lifting it resumes the pauses
// the exemption made (dunning_exemption_pauses), which moves every pending dunning time later by the time
// the pause lasted, as any resume does.

// Override modes, as PUT /v1/support/customers/{id}/dunning spells them.
const (
	OverrideNone   = "none"   // no override: the plan's policy, or the default
	OverrideExempt = "exempt" // no dunning at all
	OverridePolicy = "policy" // the customer's own policy over the plan's
)

// ActionSetDunningOverride is the audit log's name for a change of a customer's dunning override.
const ActionSetDunningOverride = "set-dunning-override"

// Where the policy that applies to a subscription comes from.
const (
	PolicySourceDefault  = "default"
	PolicySourcePlan     = "plan"
	PolicySourceCustomer = "customer"
)

// DunningOverride is a customer's override as support set it.
type DunningOverride struct {
	Mode string `json:"mode"`
	// Policy is the customer's policy document (mode policy only): keys over the plan's policy.
	Policy json.RawMessage `json:"policy,omitempty"`
	Reason string          `json:"reason"`
	SetBy  string          `json:"set_by"`
	SetAt  time.Time       `json:"set_at"`
}

// AppliedDunning is the policy that applies to one subscription, where it comes from and why.
type AppliedDunning struct {
	SubscriptionID string `json:"subscription_id"`
	Status         string `json:"status"`
	PolicySource   string `json:"policy_source"`
	// Exempt is set when the customer is exempt from dunning: Policy then only times what a resume needs.
	Exempt bool           `json:"exempt"`
	Why    string         `json:"why"`
	Policy dunning.Policy `json:"policy"`
}

// CustomerDunning is a customer's override and the policy that applies to each of their subscriptions
// that has not ended.
type CustomerDunning struct {
	CustomerID    string           `json:"customer_id"`
	Override      *DunningOverride `json:"override"`
	Subscriptions []AppliedDunning `json:"subscriptions"`
}

// SetDunningOverrideRequest is the input of SetDunningOverride.
type SetDunningOverrideRequest struct {
	Mode   string
	Policy json.RawMessage
	Reason string
}

// applied is the dunning policy that applies to a customer's invoice or subscription.
type applied struct {
	policy dunning.Policy
	source string
	why    string
	exempt bool
}

// appliedPolicy resolves the policy of sub (nil: an invoice without a subscription) for its customer:
// the service's default, over it the plan's policy, over that the customer's override.
func (s *Service) appliedPolicy(ctx context.Context, q *store.Queries, customerID string, sub *store.Subscription) (applied, error) {
	var plan *store.Plan
	if sub != nil {
		p, err := q.GetPlan(ctx, sub.PlanID)
		if err != nil {
			return applied{}, fmt.Errorf("plan %s: %w", sub.PlanID, err)
		}
		plan = &p
	}
	return s.appliedOver(ctx, q, customerID, plan)
}

// appliedOver is appliedPolicy for a plan already read (nil: none).
func (s *Service) appliedOver(ctx context.Context, q *store.Queries, customerID string, plan *store.Plan) (applied, error) {
	a := applied{policy: s.policies.Default(), source: PolicySourceDefault,
		why: "the service's default policy: neither the plan nor the customer has one of its own"}
	if plan != nil && hasDocument(plan.DunningPolicy) {
		p, err := s.policies.For(plan.DunningPolicy)
		if err != nil {
			return applied{}, fmt.Errorf("plan %s's dunning policy: %w", plan.ID, err)
		}
		a = applied{policy: p, source: PolicySourcePlan,
			why: fmt.Sprintf("plan %s has a dunning policy of its own (over the service's default)", plan.Code)}
	}
	o, err := q.GetDunningOverride(ctx, customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, nil
	}
	if err != nil {
		return applied{}, fmt.Errorf("dunning override of customer %s: %w", customerID, err)
	}
	by := fmt.Sprintf("set by %s on %s: %s", o.SetBy, o.SetAt.UTC().Format(time.RFC3339), o.Reason)
	switch o.Mode {
	case OverrideExempt:
		a.source, a.exempt = PolicySourceCustomer, true
		a.why = "the customer is exempt from dunning (" + by + "): a failed charge leaves the subscription past_due with dunning paused; " +
			"no retries, never suspended or canceled for non-payment"
	case OverridePolicy:
		over := "the service's default"
		if a.source == PolicySourcePlan {
			over = "plan " + plan.Code + "'s policy"
		}
		p, err := dunning.ParsePolicy(o.Policy, a.policy)
		if err != nil {
			// Valid when set, but not over this plan's policy (the subscription changed plans since): the
			// plan's policy goes on, and the console says why.
			a.why = fmt.Sprintf("the customer's own policy (%s) is not valid over %s (%v), so that applies", by, over, err)
			return a, nil
		}
		a = applied{policy: p, source: PolicySourceCustomer,
			why: fmt.Sprintf("the customer has a policy of their own, over %s (%s)", over, by)}
	}
	return a, nil
}

func hasDocument(doc []byte) bool {
	d := bytes.TrimSpace(doc)
	return len(d) > 0 && string(d) != "null"
}

// policyFor is the dunning policy that applies to an invoice of customerID (sub nil: without a
// subscription).
func (s *Service) policyFor(ctx context.Context, tx pgx.Tx, customerID string, sub *store.Subscription) (applied, error) {
	return s.appliedPolicy(ctx, s.q(tx), customerID, sub)
}

// GetCustomerDunning answers which dunning policy applies to each of the customer's subscriptions and
// why, with the customer's override (nil: none).
func (s *Service) GetCustomerDunning(ctx context.Context, customerID string) (CustomerDunning, error) {
	if err := RequireCustomer(ctx, s.pool, customerID); err != nil {
		return CustomerDunning{}, err
	}
	q := s.q(s.pool)
	out := CustomerDunning{CustomerID: customerID, Subscriptions: []AppliedDunning{}}
	o, err := q.GetDunningOverride(ctx, customerID)
	switch {
	case err == nil:
		v := overrideView(o)
		out.Override = &v
	case !errors.Is(err, pgx.ErrNoRows):
		return out, err
	}
	ids, err := q.CustomerSubscriptionIDs(ctx, customerID)
	if err != nil {
		return out, err
	}
	for _, id := range ids {
		sub, err := q.GetSubscription(ctx, id)
		if err != nil {
			return out, err
		}
		a, err := s.appliedPolicy(ctx, q, customerID, &sub)
		if err != nil {
			return out, err
		}
		out.Subscriptions = append(out.Subscriptions, AppliedDunning{SubscriptionID: sub.ID, Status: sub.Status,
			PolicySource: a.source, Exempt: a.exempt, Why: a.why, Policy: a.policy})
	}
	return out, nil
}

func overrideView(o store.DunningOverride) DunningOverride {
	v := DunningOverride{Mode: o.Mode, Reason: o.Reason, SetBy: o.SetBy, SetAt: o.SetAt.UTC()}
	if o.Mode == OverridePolicy {
		v.Policy = o.Policy
	}
	return v
}

// overrideSnapshot is an override as the audit log keeps it.
func overrideSnapshot(o *store.DunningOverride) map[string]any {
	if o == nil {
		return map[string]any{"mode": OverrideNone}
	}
	m := map[string]any{"mode": o.Mode, "reason": o.Reason, "set_by": o.SetBy, "set_at": o.SetAt}
	if o.Mode == OverridePolicy {
		m["policy"] = o.Policy
	}
	return m
}

// SetDunningOverride sets (mode exempt or policy) or lifts (mode none) a customer's dunning override,
// audited with its reason. Setting the exemption pauses the customer's delinquent subscriptions (each
// pause audited as pause-dunning); lifting it resumes the pauses it made (audited as resume-dunning). A
// policy is read like BILLING_DUNNING_POLICY, over the plan's policy of each of the customer's
// subscriptions, and refused (422) with every problem when it is invalid over any of them. Setting what is
// already set (the same mode and policy) changes nothing and writes no audit row.
func (s *Service) SetDunningOverride(ctx context.Context, a Actor, customerID string, in SetDunningOverrideRequest) (CustomerDunning, error) {
	if err := checkActor(a, in.Reason); err != nil {
		return CustomerDunning{}, err
	}
	reason := strings.TrimSpace(in.Reason)
	var v apperr.Validation
	switch in.Mode {
	case OverrideNone, OverrideExempt:
		if hasDocument(in.Policy) {
			v.Add("policy", "is only for mode policy")
		}
	case OverridePolicy:
		var doc map[string]json.RawMessage
		if !hasDocument(in.Policy) || json.Unmarshal(in.Policy, &doc) != nil {
			v.Add("policy", "is required for mode policy: a JSON object of policy keys (docs/dunning.md)")
		}
	default:
		v.Add("mode", "must be none, exempt or policy")
	}
	if err := v.Err(); err != nil {
		return CustomerDunning{}, err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		q := s.q(tx)
		if err := LockCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		var before *store.DunningOverride
		if o, err := q.GetDunningOverride(ctx, customerID); err == nil {
			before = &o
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		subIDs, err := q.CustomerSubscriptionIDs(ctx, customerID)
		if err != nil {
			return err
		}
		var policy json.RawMessage
		if in.Mode == OverridePolicy {
			if policy, err = s.checkCustomerPolicy(ctx, q, subIDs, in.Policy); err != nil {
				return err
			}
		}
		if sameOverride(before, in.Mode, policy) {
			return nil
		}
		var after *store.DunningOverride
		if in.Mode == OverrideNone {
			if err := q.DeleteDunningOverride(ctx, customerID); err != nil {
				return err
			}
		} else {
			o, err := q.UpsertDunningOverride(ctx, store.UpsertDunningOverrideParams{CustomerID: customerID, Mode: in.Mode,
				Policy: policy, Reason: reason, SetBy: a.ID, SetAt: now})
			if err != nil {
				return err
			}
			after = &o
		}
		if err := s.writeAudit(ctx, tx, a, ActionSetDunningOverride, "customer", customerID, reason,
			overrideSnapshot(before), overrideSnapshot(after), now); err != nil {
			return err
		}
		wasExempt := before != nil && before.Mode == OverrideExempt
		switch {
		case in.Mode == OverrideExempt && !wasExempt:
			return s.exemptionPauses(ctx, tx, a, customerID, subIDs, reason, now)
		case in.Mode != OverrideExempt && wasExempt:
			return s.exemptionResumes(ctx, tx, a, customerID, reason, now)
		}
		return nil
	})
	if err != nil {
		return CustomerDunning{}, err
	}
	return s.GetCustomerDunning(ctx, customerID)
}

// checkCustomerPolicy reads doc as the policy file is read, over the default and over the plan's policy
// of each of the customer's subscriptions, and returns it compacted; every problem is a 422.
func (s *Service) checkCustomerPolicy(ctx context.Context, q *store.Queries, subIDs []string, doc json.RawMessage) (json.RawMessage, error) {
	bases := []struct {
		label  string
		policy dunning.Policy
	}{{"the default policy", s.policies.Default()}}
	seen := map[string]bool{}
	for _, id := range subIDs {
		sub, err := q.GetSubscription(ctx, id)
		if err != nil {
			return nil, err
		}
		if seen[sub.PlanID] {
			continue
		}
		seen[sub.PlanID] = true
		plan, err := q.GetPlan(ctx, sub.PlanID)
		if err != nil {
			return nil, err
		}
		if !hasDocument(plan.DunningPolicy) {
			continue
		}
		p, err := s.policies.For(plan.DunningPolicy)
		if err != nil {
			return nil, err
		}
		bases = append(bases, struct {
			label  string
			policy dunning.Policy
		}{"plan " + plan.Code + "'s policy", p})
	}
	var v apperr.Validation
	for _, b := range bases {
		if _, err := dunning.ParsePolicy(doc, b.policy); err != nil {
			var pe *dunning.PolicyError
			if !errors.As(err, &pe) {
				return nil, err
			}
			for _, problem := range pe.Problems {
				if len(bases) > 1 {
					problem += " (over " + b.label + ")"
				}
				v.Add("policy", "%s", problem)
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, doc); err != nil {
		return nil, apperr.Invalid("policy", "is not valid JSON: %v", err)
	}
	return out.Bytes(), nil
}

// sameOverride reports whether setting mode (and policy) changes nothing.
func sameOverride(before *store.DunningOverride, mode string, policy json.RawMessage) bool {
	if before == nil {
		return mode == OverrideNone
	}
	if before.Mode != mode {
		return false
	}
	return mode != OverridePolicy || sameJSON(before.Policy, policy)
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// exemptionPauses pauses the customer's delinquent subscriptions whose dunning runs, indefinitely, as
// support's pause-dunning does (audited as such), and remembers each pause as the exemption's. A
// subscription support already paused keeps its pause, which the exemption will not lift. The caller holds
// the customer's lock; subscriptions are locked after it.
func (s *Service) exemptionPauses(ctx context.Context, tx pgx.Tx, a Actor, customerID string, subIDs []string, reason string, now time.Time) error {
	for _, id := range subIDs {
		sub, err := s.q(tx).LockSubscription(ctx, id)
		if err != nil {
			return err
		}
		st := statemachine.SubscriptionStatus(sub.Status)
		if (st != statemachine.SubscriptionPastDue && st != statemachine.SubscriptionSuspended) || sub.DunningPaused {
			continue
		}
		row, changed, err := s.pauseDunningIn(ctx, tx, sub, nil, now)
		if err != nil || !changed {
			return err
		}
		if err := s.q(tx).RecordExemptionPause(ctx, store.RecordExemptionPauseParams{SubscriptionID: sub.ID, CustomerID: customerID, PausedAt: now}); err != nil {
			return err
		}
		if err := s.writeAudit(ctx, tx, a, ActionPauseDunning, "subscription", sub.ID, "dunning exemption: "+reason,
			subscriptionSnapshot(sub), subscriptionSnapshot(row), now); err != nil {
			return err
		}
	}
	return nil
}

// exemptionResumes resumes the pauses the customer's exemption made that are still in force as it made
// them (indefinite, from the same start), audited as resume-dunning: every pending dunning time moves later
// by the time paused, and a retry the policy had set is due that much later. The caller holds the
// customer's lock.
func (s *Service) exemptionResumes(ctx context.Context, tx pgx.Tx, a Actor, customerID, reason string, now time.Time) error {
	pauses, err := s.q(tx).TakeExemptionPauses(ctx, customerID)
	if err != nil {
		return err
	}
	sort.Slice(pauses, func(i, j int) bool { return pauses[i].SubscriptionID < pauses[j].SubscriptionID })
	for _, p := range pauses {
		sub, err := s.q(tx).LockSubscription(ctx, p.SubscriptionID)
		if err != nil {
			return err
		}
		if !sub.DunningPaused || sub.DunningPausedUntil != nil || sub.DunningPausedAt == nil || !sub.DunningPausedAt.Equal(p.PausedAt) {
			continue // paid since, resumed by hand, or paused anew by support: not the exemption's pause
		}
		row, err := s.resumeDunning(ctx, tx, sub, now)
		if err != nil {
			return err
		}
		if err := s.writeAudit(ctx, tx, a, ActionResumeDunning, "subscription", sub.ID, "dunning exemption lifted: "+reason,
			subscriptionSnapshot(sub), subscriptionSnapshot(row), now); err != nil {
			return err
		}
	}
	return nil
}

// failExempt is afterFailure for an exempt customer's subscription: the subscription goes past_due (from
// active or trialing) with its grace and dunning window set by the policy beneath the exemption, and its
// dunning paused from now, indefinitely, as the exemption's pause; no step of the dunning clock is
// scheduled and nothing is charged. The invoice keeps the retry the policy chose (retryAt, zero: none),
// which lifting the exemption moves later by the time paused. A subscription already delinquent is paused
// if its dunning runs. The final action never comes.
func (s *Service) failExempt(ctx context.Context, tx pgx.Tx, sub *store.Subscription, inv store.Invoice, ap applied, firstFailed time.Time, why string, now time.Time) error {
	row := *sub
	st := statemachine.SubscriptionStatus(row.Status)
	sp := subParams(row, now)
	switch st {
	case statemachine.SubscriptionActive, statemachine.SubscriptionTrialing:
		next, err := fireSub(ctx, row.Status, statemachine.SubscriptionPaymentFailed)
		if err != nil {
			return err
		}
		grace, end := firstFailed.Add(ap.policy.GracePeriod.D()), firstFailed.Add(ap.policy.DunningWindow.D())
		sp.Status, sp.PastDueSince, sp.GraceEndsAt, sp.DunningEndsAt = next, &firstFailed, &grace, &end
	case statemachine.SubscriptionPastDue, statemachine.SubscriptionSuspended:
		if row.DunningPaused {
			return nil // paused already (by the exemption, or by support): the pause holds the retry
		}
	default:
		return nil
	}
	sp.DunningPaused, sp.DunningPausedUntil = true, nil
	saved, err := s.saveSubscription(ctx, tx, sp)
	if err != nil {
		return err
	}
	if err := s.q(tx).SetDunningPausedAt(ctx, store.SetDunningPausedAtParams{ID: row.ID, PausedAt: &now}); err != nil {
		return err
	}
	saved.DunningPausedAt = &now
	if err := s.q(tx).RecordExemptionPause(ctx, store.RecordExemptionPauseParams{SubscriptionID: row.ID, CustomerID: row.CustomerID, PausedAt: now}); err != nil {
		return err
	}
	*sub = saved
	if saved.Status != row.Status {
		refs := Refs{CustomerID: row.CustomerID, SubscriptionID: row.ID, InvoiceID: inv.ID}
		return s.emit(ctx, tx, EvtSubscriptionPastDue, refs, now, map[string]any{"grace_ends_at": saved.GraceEndsAt,
			"dunning_ends_at": saved.DunningEndsAt, "dunning_paused": true, "why": "exempt from dunning: " + why})
	}
	return nil
}
