package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
)

type createCustomerRequest struct {
	ExternalID string  `json:"external_id"`
	Email      string  `json:"email"`
	Name       string  `json:"name"`
	TimeZone   *string `json:"time_zone"`
	TaxRateID  *string `json:"tax_rate_id"`
	Locale     *string `json:"locale"`
}

func (s *Server) mountCustomers(r chi.Router) {
	r.With(allow(RoleService)).Post("/v1/customers", s.createCustomer)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/customers/{id}", s.getCustomer)
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) {
	var req createCustomerRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Billing.CreateCustomer(r.Context(), billing.NewCustomer{ExternalID: req.ExternalID, Email: req.Email, Name: req.Name, TimeZone: req.TimeZone, TaxRateID: req.TaxRateID, Locale: req.Locale})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	// The "stuck cart", as for a subscription: a customer back after closing the app mid-payment sees the
	// true delinquency state, not a payment still marked in flight.
	if err := s.Billing.ResolveStuckForCustomer(r.Context(), id); err != nil {
		loggerFrom(r).Warn("stuck-cart lookup failed", "customer_id", id, "err", err)
	}
	c, err := s.Billing.GetCustomer(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
