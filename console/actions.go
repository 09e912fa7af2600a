package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
)

// invoiceAction runs one support action on an invoice through the billing method its REST endpoint
// calls, keeps the outcome as a flash message and returns to the account page.
func (c *Console) invoiceAction(w http.ResponseWriter, r *http.Request) {
	id, action := chi.URLParam(r, "id"), chi.URLParam(r, "action")
	ctx, a := r.Context(), actor(r)
	reason := r.PostFormValue("reason")
	var msg string
	version, err := formVersion(r)
	if err != nil {
		c.finish(w, r, "", err)
		return
	}
	switch action {
	case billing.ActionRetry:
		var res billing.RetryResult
		if res, err = c.Billing.RetryInvoice(ctx, a, id, version, reason); err == nil {
			msg = retryMessage(id, res)
		}
	case billing.ActionMarkPaid:
		var inv billing.Invoice
		in := billing.MarkPaid{Reason: reason, Reference: strings.TrimSpace(r.PostFormValue("reference")), Amount: strings.TrimSpace(r.PostFormValue("amount")), ExpectVersion: version}
		if inv, err = c.Billing.MarkInvoicePaid(ctx, a, id, in); err == nil {
			msg = fmt.Sprintf("Invoice %s marked paid offline (%s %s, reference %s). It is now %s.", id, amount(inv.AmountPaid), inv.Currency, in.Reference, label(inv.Status))
		}
	case billing.ActionVoid:
		var inv billing.Invoice
		if inv, err = c.Billing.VoidInvoice(ctx, a, id, version, reason); err == nil {
			msg = fmt.Sprintf("Invoice %s is %s: nothing more is owed on it.", id, label(inv.Status))
		}
	case billing.ActionWriteOff:
		var inv billing.Invoice
		if inv, err = c.Billing.WriteOffInvoice(ctx, a, id, version, reason); err == nil {
			msg = fmt.Sprintf("Invoice %s written off (%s): no more retries; %s %s moved to bad debt.", id, label(inv.Status), amount(inv.AmountDue), inv.Currency)
		}
	case billing.ActionRefund:
		var cn billing.CreditNote
		in := billing.RefundRequest{Amount: strings.TrimSpace(r.PostFormValue("amount")), Reason: reason, To: r.PostFormValue("to"), ExpectVersion: version}
		if cn, err = c.Billing.CreateRefund(ctx, a, id, in); err == nil {
			msg = refundMessage(cn)
		}
	default:
		c.errorPage(w, r, http.StatusNotFound, "Not found", "There is no invoice action "+action+".")
		return
	}
	c.finish(w, r, msg, err)
}

// refundMessage says what a credit note did, in support's words.
func refundMessage(cn billing.CreditNote) string {
	what := fmt.Sprintf("Credit note %s (%s %s) on invoice %s", cn.Number, amount(cn.Amount), cn.Currency, cn.InvoiceID)
	switch {
	case cn.Method == billing.CreditNoteBalance:
		return what + ": credited to the customer's balance; their next invoices spend it first."
	case cn.Method == billing.CreditNoteInvoice:
		return what + ": taken off what the invoice asks for."
	case cn.Status == "issued":
		return what + ": refunded to the card."
	case cn.Status == "void":
		return what + ": the gateway refused the refund; nothing was refunded."
	default:
		return what + ": sent to the gateway; its answer is not known yet and is being looked up. Check back in a few minutes."
	}
}

// subscriptionAction is invoiceAction for the subscription actions.
func (c *Console) subscriptionAction(w http.ResponseWriter, r *http.Request) {
	id, action := chi.URLParam(r, "id"), chi.URLParam(r, "action")
	ctx, a := r.Context(), actor(r)
	reason := r.PostFormValue("reason")
	var sub billing.Subscription
	version, err := formVersion(r)
	if err != nil {
		c.finish(w, r, "", err)
		return
	}
	switch action {
	case billing.ActionExtendGrace:
		var until time.Time
		if until, err = formTime(r, "until", true); err == nil {
			sub, err = c.Billing.ExtendGrace(ctx, a, id, version, until, reason)
		}
	case billing.ActionPauseDunning:
		var until time.Time
		if until, err = formTime(r, "until", false); err == nil {
			var u *time.Time
			if !until.IsZero() {
				u = &until
			}
			sub, err = c.Billing.PauseDunning(ctx, a, id, version, u, reason)
		}
	case billing.ActionResumeDunning:
		sub, err = c.Billing.ResumeDunning(ctx, a, id, version, reason)
	case billing.ActionCancel:
		sub, err = c.Billing.SupportCancel(ctx, a, id, billing.CancelRequest{Reason: reason, AtPeriodEnd: r.PostFormValue("at_period_end") == "on", ExpectVersion: version})
	default:
		c.errorPage(w, r, http.StatusNotFound, "Not found", "There is no subscription action "+action+".")
		return
	}
	var msg string
	if err == nil {
		msg = subscriptionMessage(action, sub)
	}
	c.finish(w, r, msg, err)
}

// customerDunning sets or lifts the customer's dunning override (PUT /v1/support/customers/{id}/dunning's
// billing call), audited with the form's reason.
func (c *Console) customerDunning(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	in := billing.SetDunningOverrideRequest{Mode: r.PostFormValue("mode"), Reason: r.PostFormValue("reason")}
	if doc := strings.TrimSpace(r.PostFormValue("policy")); doc != "" && in.Mode == billing.OverridePolicy {
		in.Policy = json.RawMessage(doc)
	}
	out, err := c.Billing.SetDunningOverride(r.Context(), actor(r), id, in)
	var msg string
	if err == nil {
		switch {
		case out.Override == nil:
			msg = "No dunning override: the plans' policies apply. Pauses the exemption made were resumed."
		case out.Override.Mode == billing.OverrideExempt:
			msg = "The customer is exempt from dunning: their delinquent subscriptions are paused, and a failed charge will not be retried."
		default:
			msg = "The customer's own dunning policy applies from the next decision on."
		}
	} else if e, ok := apperr.As(err); ok && len(e.Fields) > 1 {
		// Every problem of the policy, not only the first.
		parts := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			parts[i] = f.Message
		}
		err = &apperr.Error{Kind: e.Kind, Code: e.Code, Message: "invalid policy: " + strings.Join(parts, "; ")}
	}
	c.finish(w, r, msg, err)
}

// resolveFinding closes a reconciliation finding from the overview: refund the charge at the gateway, or
// dismiss it, with a reason, as the REST endpoint does.
func (c *Console) resolveFinding(w http.ResponseWriter, r *http.Request) {
	if c.ResolveFinding == nil {
		c.errorPage(w, r, http.StatusNotFound, "Not found", "Reconciliation is not wired into this console.")
		return
	}
	id, action := chi.URLParam(r, "id"), r.PostFormValue("action")
	err := c.ResolveFinding(r.Context(), actor(r), id, action, r.PostFormValue("reason"))
	msg := fmt.Sprintf("Finding %s dismissed.", id)
	if action == "cancel_at_gateway" {
		msg = fmt.Sprintf("Finding %s resolved: the charge was canceled (refunded) at the gateway.", id)
	}
	c.finish(w, r, msg, err)
}

// formVersion is the version of the invoice or subscription the form was rendered with (0: none sent).
// Billing refuses the action if the target changed since (If-Match, as over REST), so a person never acts
// on a page that is out of date.
func formVersion(r *http.Request) (int, error) {
	v := r.PostFormValue("version")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, apperr.Invalid("version", "is not a version this console rendered")
	}
	return n, nil
}

// finish keeps the outcome for the next page and sends the browser back to the account (post, redirect,
// get: a reload does not repeat the action).
func (c *Console) finish(w http.ResponseWriter, r *http.Request, msg string, err error) {
	s := sessionFrom(r.Context())
	if err != nil {
		e, ok := apperr.As(err)
		if !ok {
			c.Log.Error("console: action failed", "path", r.URL.Path, "request_id", api.RequestIDFrom(r.Context()), "err", err)
			c.setFlash(r.Context(), s, "error", "The action failed and nothing was confirmed. Request id "+api.RequestIDFrom(r.Context())+".")
		} else if e.Kind == apperr.KindPrecondition {
			c.setFlash(r.Context(), s, "error", "Not done: it changed since this page was loaded ("+e.Message+"). Look at it again before acting.")
		} else {
			c.setFlash(r.Context(), s, "error", "Not done: "+e.Message+".")
		}
	} else {
		c.setFlash(r.Context(), s, "ok", msg)
	}
	back := "/console"
	if id := r.PostFormValue("customer_id"); id != "" {
		back = "/console/customers/" + url.PathEscape(id)
	}
	seeOther(w, r, back)
}

func retryMessage(id string, res billing.RetryResult) string {
	if res.Charge == nil {
		return fmt.Sprintf("Invoice %s was already paid: nothing was charged.", id)
	}
	ch := res.Charge
	lookup := ""
	if res.InFlight {
		lookup = " (an earlier attempt was still unresolved, so it was looked up instead of charging again)"
	}
	switch ch.Outcome {
	case "succeeded":
		return fmt.Sprintf("Retry of invoice %s succeeded%s: %s %s paid.", id, lookup, amount(res.Invoice.AmountPaid), res.Invoice.Currency)
	case "declined":
		return fmt.Sprintf("Retry of invoice %s was declined%s: %s (%s decline).", id, lookup, ch.DeclineCode, ch.DeclineClass)
	case "unknown", "in_flight":
		return fmt.Sprintf("Retry of invoice %s: the gateway's answer is not known yet%s; it is being resolved in the background.", id, lookup)
	case "deferred":
		return fmt.Sprintf("Retry of invoice %s was deferred: the gateway is unavailable right now and the charge was rescheduled.", id)
	case "no_key":
		return fmt.Sprintf("Retry of invoice %s: the customer has no billing key that can be charged. Ask for a new card.", id)
	}
	return fmt.Sprintf("Retry of invoice %s: %s.", id, label(ch.Outcome))
}

func subscriptionMessage(action string, sub billing.Subscription) string {
	switch action {
	case billing.ActionExtendGrace:
		return fmt.Sprintf("Grace of %s extended to %s.", sub.ID, when(sub.Dunning.GraceEndsAt))
	case billing.ActionPauseDunning:
		if sub.Dunning.PausedUntil != nil {
			return fmt.Sprintf("Dunning of %s paused until %s.", sub.ID, when(sub.Dunning.PausedUntil))
		}
		return fmt.Sprintf("Dunning of %s paused until someone resumes it.", sub.ID)
	case billing.ActionResumeDunning:
		return fmt.Sprintf("Dunning of %s resumed; its deadlines moved later by the time it was paused.", sub.ID)
	case billing.ActionCancel:
		if sub.CancelAtPeriodEnd {
			return fmt.Sprintf("Subscription %s will cancel at its period end, %s.", sub.ID, when(sub.CurrentPeriodEnd))
		}
		return fmt.Sprintf("Subscription %s is %s.", sub.ID, label(sub.Status))
	}
	return "Done."
}

// formTime reads a datetime-local field as UTC (the form says so); an empty optional field is the zero
// time.
func formTime(r *http.Request, field string, required bool) (time.Time, error) {
	v := strings.TrimSpace(r.PostFormValue(field))
	if v == "" {
		if required {
			return time.Time{}, apperr.Invalid(field, "is required")
		}
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, apperr.Invalid(field, "must be a date and time, e.g. 2026-03-01T12:00 (UTC)")
}
