package api

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
)

// mountSupportDunning registers a customer's dunning override (docs/dunning.md, "Per-customer
// overrides"): which policy applies to each of their subscriptions and why, and support's exemption or
// policy of the customer's own (audited). Support and admin only.
func (s *Server) mountSupportDunning(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(allow(RoleSupport))
		r.Get("/v1/support/customers/{id}/dunning", s.getCustomerDunning)
		r.Put("/v1/support/customers/{id}/dunning", s.putCustomerDunning)
	})
}

// dunningOverrideRequest sets (exempt, policy) or lifts (none) the override; policy is for mode policy.
type dunningOverrideRequest struct {
	Mode   string          `json:"mode"`
	Policy json.RawMessage `json:"policy"`
	Reason string          `json:"reason"`
}

func (s *Server) getCustomerDunning(w http.ResponseWriter, r *http.Request) {
	out, err := s.Billing.GetCustomerDunning(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putCustomerDunning(w http.ResponseWriter, r *http.Request) {
	var req dunningOverrideRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	out, err := s.Billing.SetDunningOverride(r.Context(), actorFrom(r), chi.URLParam(r, "id"),
		billing.SetDunningOverrideRequest{Mode: req.Mode, Policy: req.Policy, Reason: req.Reason})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
