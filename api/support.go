package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
)

// mountSupport registers API.md's support endpoints: the delinquent list and the audited actions on
// invoices and subscriptions. Support may call them (admin may do everything); a service token may not.
// Each action honors If-Match with the target's version (the invoice's or the subscription's), compared
// under the row lock like every other mutation's.
func (s *Server) mountSupport(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(allow(RoleSupport))
		r.Get("/v1/support/delinquent", s.listDelinquent)
		r.Post("/v1/support/invoices/{id}/retry", s.supportRetry)
		r.Post("/v1/support/invoices/{id}/mark-paid", s.supportMarkPaid)
		r.Post("/v1/support/invoices/{id}/void", s.supportVoid)
		r.Post("/v1/support/invoices/{id}/write-off", s.supportWriteOff)
		r.Post("/v1/support/subscriptions/{id}/extend-grace", s.supportExtendGrace)
		r.Post("/v1/support/subscriptions/{id}/pause-dunning", s.supportPauseDunning)
		r.Post("/v1/support/subscriptions/{id}/resume-dunning", s.supportResumeDunning)
	})
}

// actorFrom is the audit log's view of the caller.
func actorFrom(r *http.Request) billing.Actor {
	p, _ := PrincipalFrom(r.Context())
	return billing.Actor{ID: p.KeyID, Role: p.Role, RequestID: RequestIDFrom(r.Context()), Origin: audit.OriginAPI}
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

type markPaidRequest struct {
	Reason    string `json:"reason"`
	Reference string `json:"reference"`
	Amount    string `json:"amount"`
}

type untilRequest struct {
	Until  *time.Time `json:"until"`
	Reason string     `json:"reason"`
}

func (s *Server) supportRetry(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.Billing.RetryInvoice(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(res.Invoice.Version))
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) supportMarkPaid(w http.ResponseWriter, r *http.Request) {
	var req markPaidRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	inv, err := s.Billing.MarkInvoicePaid(r.Context(), actorFrom(r), chi.URLParam(r, "id"),
		billing.MarkPaid{Reason: req.Reason, Reference: req.Reference, Amount: req.Amount, ExpectVersion: expect})
	writeInvoice(w, r, inv, err)
}

func (s *Server) supportVoid(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	inv, err := s.Billing.VoidInvoice(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	writeInvoice(w, r, inv, err)
}

func (s *Server) supportWriteOff(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	inv, err := s.Billing.WriteOffInvoice(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	writeInvoice(w, r, inv, err)
}

func (s *Server) supportExtendGrace(w http.ResponseWriter, r *http.Request) {
	var req untilRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Until == nil {
		writeError(w, r, apperr.Invalid("until", "is required: the new end of the grace period (RFC 3339)"))
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sub, err := s.Billing.ExtendGrace(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, *req.Until, req.Reason)
	writeSupportSubscription(w, r, sub, err)
}

func (s *Server) supportPauseDunning(w http.ResponseWriter, r *http.Request) {
	var req untilRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sub, err := s.Billing.PauseDunning(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Until, req.Reason)
	writeSupportSubscription(w, r, sub, err)
}

func (s *Server) supportResumeDunning(w http.ResponseWriter, r *http.Request) {
	var req untilRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	if req.Until != nil {
		writeError(w, r, apperr.Invalid("until", "is for pause-dunning; resume-dunning resumes now"))
		return
	}
	expect, err := ifMatchVersion(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sub, err := s.Billing.ResumeDunning(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	writeSupportSubscription(w, r, sub, err)
}

func writeInvoice(w http.ResponseWriter, r *http.Request, inv billing.Invoice, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(inv.Version))
	writeJSON(w, http.StatusOK, inv)
}

func writeSupportSubscription(w http.ResponseWriter, r *http.Request, sub billing.Subscription, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(sub.Version))
	writeJSON(w, http.StatusOK, sub)
}

func (s *Server) listDelinquent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := page.Parse(q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	f := billing.DelinquentFilter{State: q.Get("state"), Gateway: q.Get("gateway"), DeclineClass: q.Get("decline_class")}
	if v := q.Get("min_days"); v != "" {
		if f.MinDays, err = strconv.Atoi(v); err != nil {
			writeError(w, r, apperr.Invalid("min_days", "must be a whole number of days"))
			return
		}
	}
	list, err := s.Billing.ListDelinquent(r.Context(), f, p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
