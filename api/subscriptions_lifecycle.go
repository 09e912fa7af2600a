package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
)

// mountSubscriptionLifecycle registers the calls that change a running subscription: plan changes,
// cancel and its undo, pause and resume.
func (s *Server) mountSubscriptionLifecycle(r chi.Router) {
	r.With(allow(RoleService)).Post("/v1/subscriptions/{id}/change-plan", s.changePlan)
	r.With(allow(RoleService, RoleSupport)).Post("/v1/subscriptions/{id}/cancel", s.cancelSubscription)
	r.With(allow(RoleService)).Post("/v1/subscriptions/{id}/resume-cancel", s.resumeCancelSubscription)
	r.With(allow(RoleService)).Post("/v1/subscriptions/{id}/pause", s.pauseSubscription)
	r.With(allow(RoleService)).Post("/v1/subscriptions/{id}/resume", s.resumeSubscription)
}

type cancelRequest struct {
	AtPeriodEnd bool   `json:"at_period_end"`
	Reason      string `json:"reason"`
}

// cancelSubscription cancels now (an empty body, or at_period_end false) or at the period end.
func (s *Server) cancelSubscription(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decodeOptional, subscriptionVersion, func(req cancelRequest, expect int) (billing.Subscription, error) {
		cancel := billing.CancelRequest{AtPeriodEnd: req.AtPeriodEnd, Reason: req.Reason, ExpectVersion: expect}
		switch p, _ := PrincipalFrom(r.Context()); p.Role {
		case RoleSupport, RoleAdmin:
			// A person's cancel, not the merchant backend's: the audit log records it (billing/support.go).
			// Support must say why; an admin's cancel is audited with or without a reason.
			if p.Role == RoleAdmin && strings.TrimSpace(cancel.Reason) == "" {
				cancel.Reason = "no reason given (admin cancel)"
			}
			return s.Billing.SupportCancel(r.Context(), actorFrom(r), chi.URLParam(r, "id"), cancel)
		}
		return s.Billing.Cancel(r.Context(), chi.URLParam(r, "id"), cancel)
	})
}

func (s *Server) resumeCancelSubscription(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decodeOptional, subscriptionVersion, func(_ struct{}, expect int) (billing.Subscription, error) {
		return s.Billing.ResumeCancel(r.Context(), chi.URLParam(r, "id"), expect)
	})
}

func (s *Server) pauseSubscription(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decodeOptional, subscriptionVersion, func(_ struct{}, expect int) (billing.Subscription, error) {
		return s.Billing.Pause(r.Context(), chi.URLParam(r, "id"), expect)
	})
}

func (s *Server) resumeSubscription(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decodeOptional, subscriptionVersion, func(_ struct{}, expect int) (billing.Subscription, error) {
		return s.Billing.Resume(r.Context(), chi.URLParam(r, "id"), expect)
	})
}
