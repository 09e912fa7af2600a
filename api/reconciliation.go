package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/reconcile"
)

// mountReconciliation registers the reconciliation findings for support (admin may do everything).
func (s *Server) mountReconciliation(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(allow(RoleSupport))
		r.Get("/v1/support/reconciliation", s.listReconciliation)
		r.Post("/v1/support/reconciliation/findings/{id}/resolve", s.resolveReconciliationFinding)
	})
}

// listReconciliation: ?status=open|resolved|mismatch (mismatch: open findings of any kind; empty: all),
// ?kind=missing_here|missing_there|amount_mismatch, ?gateway=, and the usual limit/cursor.
func (s *Server) listReconciliation(w http.ResponseWriter, r *http.Request) {
	if s.Reconcile == nil {
		writeError(w, r, errReconcileOff)
		return
	}
	q := r.URL.Query()
	p, err := page.Parse(q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Reconcile.Findings(r.Context(), reconcile.Filter{Status: q.Get("status"), Kind: q.Get("kind"), Gateway: q.Get("gateway")}, p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

type resolveFindingRequest struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// resolveReconciliationFinding: {action: cancel_at_gateway|dismiss, reason}. cancel_at_gateway refunds the
// charge at the gateway; it is the only way the service reverses a charge it never asked for.
func (s *Server) resolveReconciliationFinding(w http.ResponseWriter, r *http.Request) {
	if s.Reconcile == nil {
		writeError(w, r, errReconcileOff)
		return
	}
	var req resolveFindingRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	f, err := s.Reconcile.Resolve(r.Context(), actorFrom(r), chi.URLParam(r, "id"), reconcile.Resolution{Action: req.Action, Reason: req.Reason})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

var errReconcileOff = &apperr.Error{Kind: apperr.KindUnavailable, Code: "reconciliation_unavailable",
	Message: "reconciliation is not configured in this process"}
