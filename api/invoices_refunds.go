package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/page"
)

// mountRefunds registers money back: refunds and credits on an invoice (service and support; audited
// with the caller either way) and the credit notes they make.
func (s *Server) mountRefunds(r chi.Router) {
	r.With(allow(RoleService, RoleSupport)).Post("/v1/invoices/{id}/refunds", s.createRefund)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/credit-notes", s.listCreditNotes)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/credit-notes/{id}", s.getCreditNote)
}

// createRefund answers 201 with the credit note. A refund to the card was sent to the gateway before the
// answer: its credit note is issued (refund succeeded), void (the gateway refused) or pending (the outcome
// is not known yet and is being looked up; GET the credit note later).
func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) {
	var req billing.RefundRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req.ExpectVersion = expect
	req.Idempotency = idempotencyOf(r)
	cn, err := s.Billing.CreateRefund(r.Context(), actorFrom(r), chi.URLParam(r, "id"), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/credit-notes/"+cn.ID)
	writeJSON(w, http.StatusCreated, cn)
}

func (s *Server) listCreditNotes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := page.Parse(q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.ListCreditNotes(r.Context(), billing.CreditNoteFilter{CustomerID: q.Get("customer_id"), InvoiceID: q.Get("invoice_id")}, p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getCreditNote(w http.ResponseWriter, r *http.Request) {
	cn, err := s.Billing.GetCreditNote(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cn)
}
