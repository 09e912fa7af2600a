package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/page"
)

func (s *Server) mountInvoices(r chi.Router) {
	r.With(allow(RoleService, RoleSupport)).Get("/v1/invoices", s.listInvoices)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/invoices/{id}", s.getInvoice)
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := page.Parse(q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.ListInvoices(r.Context(), billing.InvoiceFilter{CustomerID: q.Get("customer_id"),
		SubscriptionID: q.Get("subscription_id"), Status: q.Get("status")}, p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) {
	inv, err := s.Billing.GetInvoice(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(inv.Version))
	writeJSON(w, http.StatusOK, inv)
}
