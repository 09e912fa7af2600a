package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/internal/page"
)

// mountAudit registers the audit log's reader. There is no writer endpoint: rows are written by the
// actions they record, in the same transaction.
func (s *Server) mountAudit(r chi.Router) {
	r.With(allow(RoleSupport)).Get("/v1/support/audit", s.listAudit)
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := page.Parse(q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.AuditLog(r.Context(), audit.Filter{TargetID: q.Get("target_id"), Actor: q.Get("actor")}, p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
