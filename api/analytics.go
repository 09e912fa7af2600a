package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
)

// mountAnalytics registers API.md's analytics for support (admin may do everything): recovery by period,
// decline code and attempt; revenue at risk and recovered, MRR and involuntary churn (docs/analytics.md).
func (s *Server) mountAnalytics(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(allow(RoleSupport))
		r.Get("/v1/analytics/recovery", s.analyticsRecovery)
		r.Get("/v1/analytics/revenue", s.analyticsRevenue)
	})
}

// analyticsRange reads ?from=&to= (RFC 3339), ?interval=day|week|month and ?currency=; a bad one is 422.
func (s *Server) analyticsRange(r *http.Request) (billing.AnalyticsRange, error) {
	q := r.URL.Query()
	return s.Billing.AnalyticsRange(billing.AnalyticsQuery{From: q.Get("from"), To: q.Get("to"),
		Interval: q.Get("interval"), Currency: q.Get("currency")})
}

func (s *Server) analyticsRecovery(w http.ResponseWriter, r *http.Request) {
	rg, err := s.analyticsRange(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	rep, err := s.Billing.Recovery(r.Context(), rg)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) analyticsRevenue(w http.ResponseWriter, r *http.Request) {
	rg, err := s.analyticsRange(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	rep, err := s.Billing.Revenue(r.Context(), rg)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
