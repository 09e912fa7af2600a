package api

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
)

type createSubscriptionRequest struct {
	CustomerID string `json:"customer_id"`
	PlanID     string `json:"plan_id"`
	Quantity   int    `json:"quantity"`
	TrialDays  *int   `json:"trial_days"`
	Coupon     string `json:"coupon"`
}

func (s *Server) mountSubscriptions(r chi.Router) {
	r.With(allow(RoleService)).Post("/v1/subscriptions", s.createSubscription)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/subscriptions/{id}", s.getSubscription)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/subscriptions/{id}/timeline", s.subscriptionTimeline)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/customers/{id}/subscriptions", s.listCustomerSubscriptions)
}

// createSubscription answers 201 when the first charge succeeded (or a trial started), 402 with the
// subscription when it was declined, and 202 when the outcome is unknown (resolved in the background).
// A re-run of a request whose first run was cut off answers the same way about the subscription that
// run created, by its first charge.
func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	var req createSubscriptionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	created, err := s.Billing.CreateSubscription(r.Context(), billing.NewSubscription{CustomerID: req.CustomerID,
		PlanID: req.PlanID, Quantity: req.Quantity, TrialDays: req.TrialDays, Coupon: req.Coupon, Idempotency: idempotencyOf(r)})
	if err != nil {
		writeError(w, r, err)
		return
	}
	sub := created.Subscription
	w.Header().Set("ETag", etag(sub.Version))
	switch {
	case sub.Status == "active" || sub.Status == "trialing" || created.Charge.Outcome == gateway.Succeeded ||
		created.Invoice == nil: // a trial has no first charge
		writeJSON(w, http.StatusCreated, sub)
	case created.Charge.Outcome == gateway.Declined || created.Charge.NoKey:
		invoiceID := ""
		if created.Invoice != nil {
			invoiceID = created.Invoice.ID
		}
		writeError(w, r, &apperr.Error{Kind: apperr.KindDeclined, Code: "payment_declined",
			Message: "the first payment was declined; the subscription is incomplete until it is paid",
			Extra: map[string]any{"decline_code": created.Charge.DeclineCode, "decline_class": created.Charge.DeclineClass,
				"subscription_id": sub.ID, "invoice_id": invoiceID, "subscription": sub}})
	default:
		writeJSON(w, http.StatusAccepted, sub)
	}
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	// The "stuck cart": a customer who closed the app mid-payment sees the true state on return.
	if err := s.Billing.ResolveStuckForSubscription(r.Context(), id); err != nil {
		loggerFrom(r).Warn("stuck-cart lookup failed", "subscription_id", id, "err", err)
	}
	sub, err := s.Billing.GetSubscription(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(sub.Version))
	writeJSON(w, http.StatusOK, sub)
}

func (s *Server) listCustomerSubscriptions(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.ListCustomerSubscriptions(r.Context(), chi.URLParam(r, "id"), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) subscriptionTimeline(w http.ResponseWriter, r *http.Request) {
	limit := page.Default
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > page.Max {
			writeError(w, r, apperr.Invalid("limit", "must be an integer from 1 to %d", page.Max))
			return
		}
		limit = n
	}
	var after int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			writeError(w, r, apperr.Invalid("cursor", "is not a cursor this API returned"))
			return
		}
		after = n
	}
	entries, next, err := s.Billing.Timeline(r.Context(), chi.URLParam(r, "id"), limit, after)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := page.List[billing.TimelineEntry]{Data: entries}
	if next > 0 {
		c := strconv.FormatInt(next, 10)
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }
