package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/page"
)

type createTaxRateRequest struct {
	Name       string  `json:"name"`
	Percentage string  `json:"percentage"`
	Inclusive  bool    `json:"inclusive"`
	Country    *string `json:"country"`
}

type customerTaxRateRequest struct {
	TaxRateID *string `json:"tax_rate_id"`
}

// mountTaxRates registers tax rates (admin writes, anyone reads) and attaching one to a customer.
func (s *Server) mountTaxRates(r chi.Router) {
	r.With(allow()).Post("/v1/tax-rates", s.createTaxRate)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/tax-rates", s.listTaxRates)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/tax-rates/{id}", s.getTaxRate)
	r.With(allow(RoleService)).Post("/v1/customers/{id}/tax-rate", s.setCustomerTaxRate)
}

func (s *Server) createTaxRate(w http.ResponseWriter, r *http.Request) {
	var req createTaxRateRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	t, err := s.Billing.CreateTaxRate(r.Context(), billing.NewTaxRate{Name: req.Name, Percentage: req.Percentage,
		Inclusive: req.Inclusive, Country: req.Country})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) listTaxRates(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.ListTaxRates(r.Context(), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getTaxRate(w http.ResponseWriter, r *http.Request) {
	t, err := s.Billing.GetTaxRate(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// setCustomerTaxRate attaches a tax rate to a customer ({"tax_rate_id": null} detaches it).
func (s *Server) setCustomerTaxRate(w http.ResponseWriter, r *http.Request) {
	var req customerTaxRateRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Billing.SetCustomerTaxRate(r.Context(), chi.URLParam(r, "id"), req.TaxRateID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
