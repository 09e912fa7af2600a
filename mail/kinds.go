package mail

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dunningworks/billing/billing"
)

// Kind is a kind of customer email.
type Kind string

const (
	// PaymentFailedSoft: a charge declined for a reason that may pass (insufficient funds, a limit); the
	// email says when the next retry is.
	PaymentFailedSoft Kind = "payment_failed_soft"
	// PaymentFailedHard: the card cannot be charged again (stolen, closed, expired, or no card at all);
	// the email asks for a new card.
	PaymentFailedHard Kind = "payment_failed_hard"
	// PaymentSucceeded: an invoice was paid; the email is the receipt (a PDF attached when one is made).
	PaymentSucceeded Kind = "payment_succeeded"
	// SubscriptionPastDue: the first failure of a period made the subscription past due; service goes
	// on until the grace period ends.
	SubscriptionPastDue Kind = "subscription_past_due"
	// SubscriptionSuspended: the grace period ended unpaid; service is off until the invoice is paid.
	SubscriptionSuspended Kind = "subscription_suspended"
	// SubscriptionCanceled: dunning ended unpaid; the subscription was canceled (or marked unpaid) for
	// non-payment.
	SubscriptionCanceled Kind = "subscription_canceled"
	// PlanChanged: the subscription's plan or quantity changed (at once, or a scheduled change applied).
	PlanChanged Kind = "plan_changed"
	// RenewalUpcoming: the subscription renews (or its trial converts to paid) in a few days.
	RenewalUpcoming Kind = "renewal_upcoming"
	// PortalLink: a fresh link to the customer's page, which the customer asked for on the page of an
	// expired link (RequestLink); no billing event makes one.
	PortalLink Kind = "portal_link"
)

// Kinds lists every kind, in the order docs and the console show them.
var Kinds = []Kind{PaymentFailedSoft, PaymentFailedHard, PaymentSucceeded, SubscriptionPastDue, SubscriptionSuspended,
	SubscriptionCanceled, PlanChanged, RenewalUpcoming, PortalLink}

// ParseKinds reads BILLING_MAIL_KINDS: empty or "all" is every kind; a list of kinds sends only those;
// entries starting with "-" remove a kind (from every kind, when the list names none to add), so
// "-subscription_past_due" sends all but that one.
func ParseKinds(s string) (map[Kind]bool, error) {
	var add, remove []Kind
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" || p == "all" {
			continue
		}
		neg := strings.HasPrefix(p, "-")
		k := Kind(strings.TrimPrefix(p, "-"))
		if !slices.Contains(Kinds, k) {
			names := make([]string, len(Kinds))
			for i, k := range Kinds {
				names[i] = string(k)
			}
			return nil, fmt.Errorf("unknown kind %q (known: %s)", k, strings.Join(names, ", "))
		}
		if neg {
			remove = append(remove, k)
		} else {
			add = append(add, k)
		}
	}
	if len(add) == 0 {
		add = Kinds
	}
	out := map[Kind]bool{}
	for _, k := range add {
		out[k] = true
	}
	for _, k := range remove {
		delete(out, k)
	}
	return out, nil
}

// kindsFor says which emails an event owes (usually none, at most one).
func kindsFor(typ string, raw json.RawMessage) []Kind {
	switch typ {
	case billing.EvtInvoicePaymentFailed, billing.EvtInvoicePaid, billing.EvtSubscriptionPastDue, billing.EvtSubscriptionSuspended,
		billing.EvtSubscriptionCanceled, billing.EvtSubscriptionUnpaid, billing.EvtSubscriptionUpdated, billing.EvtSubscriptionRenewalUpcoming:
	default:
		return nil // the common case decodes nothing
	}
	var d struct {
		DeclineClass string `json:"decline_class"`
		Reason       string `json:"reason"`
		AmountPaid   string `json:"amount_paid"`
		FinalAction  string `json:"final_action"`
		Why          string `json:"why"`
	}
	_ = json.Unmarshal(raw, &d)
	switch typ {
	case billing.EvtInvoicePaymentFailed:
		if d.DeclineClass == "hard" || d.Reason == "no_chargeable_billing_key" {
			return []Kind{PaymentFailedHard}
		}
		return []Kind{PaymentFailedSoft}
	case billing.EvtInvoicePaid:
		if d.AmountPaid == "" || strings.Trim(d.AmountPaid, "0.") == "" {
			return nil // nothing was paid (a zero invoice): no receipt
		}
		return []Kind{PaymentSucceeded}
	case billing.EvtSubscriptionPastDue:
		return []Kind{SubscriptionPastDue}
	case billing.EvtSubscriptionSuspended:
		return []Kind{SubscriptionSuspended}
	case billing.EvtSubscriptionCanceled:
		if d.FinalAction != "" {
			return []Kind{SubscriptionCanceled} // dunning's final action, not the customer's own cancel
		}
	case billing.EvtSubscriptionUnpaid:
		return []Kind{SubscriptionCanceled}
	case billing.EvtSubscriptionRenewalUpcoming:
		return []Kind{RenewalUpcoming}
	case billing.EvtSubscriptionUpdated:
		if d.Why == "plan changed" || d.Why == "pending change applied at renewal" {
			return []Kind{PlanChanged}
		}
	}
	return nil
}
