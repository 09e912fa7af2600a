package api

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/page"
)

type createPlanRequest struct {
	Code          string          `json:"code"`
	Name          string          `json:"name"`
	Amount        string          `json:"amount"`
	Currency      string          `json:"currency"`
	Interval      string          `json:"interval"`
	IntervalCount *int            `json:"interval_count"` // absent: 1; present: 1 to 365 (0 is refused)
	TrialDays     int             `json:"trial_days"`
	DunningPolicy json.RawMessage `json:"dunning_policy"`
	TaxRateID     *string         `json:"tax_rate_id"`
	// RenewalNoticeDays: absent or null, no notice before renewals; TrialEndNoticeDays: absent, 7.
	RenewalNoticeDays  *int `json:"renewal_notice_days"`
	TrialEndNoticeDays *int `json:"trial_end_notice_days"`
}

func (s *Server) mountPlans(r chi.Router) {
	r.With(allow()).Post("/v1/plans", s.createPlan)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/plans", s.listPlans)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/plans/{id}", s.getPlan)
}

func (s *Server) createPlan(w http.ResponseWriter, r *http.Request) {
	var req createPlanRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	count := 1
	if req.IntervalCount != nil {
		count = *req.IntervalCount
	}
	p, err := s.Billing.CreatePlan(r.Context(), billing.NewPlan{Code: req.Code, Name: req.Name, Amount: req.Amount,
		Currency: req.Currency, Interval: req.Interval, IntervalCount: count, TrialDays: req.TrialDays,
		DunningPolicy: req.DunningPolicy, TaxRateID: req.TaxRateID,
		RenewalNoticeDays: req.RenewalNoticeDays, TrialEndNoticeDays: req.TrialEndNoticeDays})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.ListPlans(r.Context(), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getPlan(w http.ResponseWriter, r *http.Request) {
	p, err := s.Billing.GetPlan(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
