package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
)

type changePlanRequest struct {
	PlanID string `json:"plan_id"`
	// Quantity 0 or absent keeps the subscription's quantity.
	Quantity  int    `json:"quantity"`
	Timing    string `json:"timing"`
	Proration string `json:"proration"`
	Coupon    string `json:"coupon"`
}

// changePlan answers 200 {subscription, invoice, credit}. invoice is the proration invoice charged now
// (null when nothing is charged now); a declined proration charge is still a 200: the change is made and
// the invoice walks dunning, which the subscription's status (past_due) and the invoice show.
func (s *Server) changePlan(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, func(out billing.PlanChanged) int { return out.Subscription.Version },
		func(req changePlanRequest, expect int) (billing.PlanChanged, error) {
			return s.Billing.ChangePlan(r.Context(), chi.URLParam(r, "id"), billing.PlanChange{PlanID: req.PlanID,
				Quantity: req.Quantity, Timing: billing.ChangeTiming(req.Timing), Proration: billing.ProrationBehavior(req.Proration),
				ExpectVersion: expect, Coupon: req.Coupon})
		})
}
