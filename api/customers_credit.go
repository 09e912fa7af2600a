package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
)

type creditRequest struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Reason   string `json:"reason"`
}

// mountCustomerCredit registers support's grant or removal of customer credit (audited).
func (s *Server) mountCustomerCredit(r chi.Router) {
	r.With(allow(RoleSupport)).Post("/v1/customers/{id}/credit", s.adjustCredit)
}

func (s *Server) adjustCredit(w http.ResponseWriter, r *http.Request) {
	var req creditRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	out, err := s.Billing.AdjustCredit(r.Context(), actorFrom(r), chi.URLParam(r, "id"),
		billing.CreditAdjustment{Amount: req.Amount, Currency: req.Currency, Reason: req.Reason})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
