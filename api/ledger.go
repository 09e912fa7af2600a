package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (s *Server) mountLedger(r chi.Router) {
	r.With(allow()).Get("/v1/ledger/trial-balance", s.trialBalance)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/customers/{id}/balance", s.customerBalance)
}

func (s *Server) trialBalance(w http.ResponseWriter, r *http.Request) {
	tb, err := s.Billing.TrialBalance(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tb)
}

func (s *Server) customerBalance(w http.ResponseWriter, r *http.Request) {
	b, err := s.Billing.GetCustomerBalance(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}
