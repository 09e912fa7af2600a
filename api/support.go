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

// extendGraceRequest needs until: the new end of the grace period.
type extendGraceRequest struct {
	Until  *time.Time `json:"until"`
	Reason string     `json:"reason"`
}

func (q *extendGraceRequest) check() error {
	if q.Until == nil {
		return apperr.Invalid("until", "is required: the new end of the grace period (RFC 3339)")
	}
	return nil
}

// pauseDunningRequest's until is optional: without it the pause lasts until support resumes it.
type pauseDunningRequest struct {
	Until  *time.Time `json:"until"`
	Reason string     `json:"reason"`
}

// resumeDunningRequest refuses until: a resume happens now.
type resumeDunningRequest struct {
	Until  *time.Time `json:"until"`
	Reason string     `json:"reason"`
}

func (q *resumeDunningRequest) check() error {
	if q.Until != nil {
		return apperr.Invalid("until", "is for pause-dunning; resume-dunning resumes now")
	}
	return nil
}

func (s *Server) supportRetry(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, func(res billing.RetryResult) int { return res.Invoice.Version },
		func(req reasonRequest, expect int) (billing.RetryResult, error) {
			return s.Billing.RetryInvoice(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
		})
}

func (s *Server) supportMarkPaid(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, invoiceVersion, func(req markPaidRequest, expect int) (billing.Invoice, error) {
		return s.Billing.MarkInvoicePaid(r.Context(), actorFrom(r), chi.URLParam(r, "id"),
			billing.MarkPaid{Reason: req.Reason, Reference: req.Reference, Amount: req.Amount, ExpectVersion: expect})
	})
}

func (s *Server) supportVoid(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, invoiceVersion, func(req reasonRequest, expect int) (billing.Invoice, error) {
		return s.Billing.VoidInvoice(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	})
}

func (s *Server) supportWriteOff(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, invoiceVersion, func(req reasonRequest, expect int) (billing.Invoice, error) {
		return s.Billing.WriteOffInvoice(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	})
}

func (s *Server) supportExtendGrace(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, subscriptionVersion, func(req extendGraceRequest, expect int) (billing.Subscription, error) {
		return s.Billing.ExtendGrace(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, *req.Until, req.Reason)
	})
}

func (s *Server) supportPauseDunning(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, subscriptionVersion, func(req pauseDunningRequest, expect int) (billing.Subscription, error) {
		return s.Billing.PauseDunning(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Until, req.Reason)
	})
}

func (s *Server) supportResumeDunning(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, subscriptionVersion, func(req resumeDunningRequest, expect int) (billing.Subscription, error) {
		return s.Billing.ResumeDunning(r.Context(), actorFrom(r), chi.URLParam(r, "id"), expect, req.Reason)
	})
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
