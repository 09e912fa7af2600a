package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/page"
)

type createCouponRequest struct {
	Code                string     `json:"code"`
	Name                string     `json:"name"`
	PercentOff          string     `json:"percent_off"`
	AmountOff           string     `json:"amount_off"`
	Currency            string     `json:"currency"`
	Duration            string     `json:"duration"`
	DurationInIntervals *int       `json:"duration_in_intervals"`
	MaxRedemptions      *int       `json:"max_redemptions"`
	RedeemBy            *time.Time `json:"redeem_by"`
	PlanIDs             []string   `json:"plan_ids"`
}

type applyDiscountRequest struct {
	Coupon string `json:"coupon"`
	// Reason is required from support (the call is audited) and ignored from the merchant's backend.
	Reason string `json:"reason"`
}

// mountCoupons registers coupons (admin writes, anyone reads) and applying one to a subscription.
func (s *Server) mountCoupons(r chi.Router) {
	r.With(allow()).Post("/v1/coupons", s.createCoupon)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/coupons", s.listCoupons)
	r.With(allow(RoleService, RoleSupport)).Get("/v1/coupons/{id}", s.getCoupon)
	r.With(allow()).Post("/v1/coupons/{id}/archive", s.archiveCoupon)
	r.With(allow(RoleService, RoleSupport)).Post("/v1/subscriptions/{id}/discount", s.applyDiscount)
}

func (s *Server) createCoupon(w http.ResponseWriter, r *http.Request) {
	var req createCouponRequest
	if err := decode(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Billing.CreateCoupon(r.Context(), billing.NewCoupon{Code: req.Code, Name: req.Name, PercentOff: req.PercentOff,
		AmountOff: req.AmountOff, Currency: req.Currency, Duration: req.Duration, DurationInIntervals: req.DurationInIntervals,
		MaxRedemptions: req.MaxRedemptions, RedeemBy: req.RedeemBy, PlanIDs: req.PlanIDs})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listCoupons(w http.ResponseWriter, r *http.Request) {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.Billing.ListCoupons(r.Context(), p)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// getCoupon reads a coupon by id or by code.
func (s *Server) getCoupon(w http.ResponseWriter, r *http.Request) {
	c, err := s.Billing.GetCoupon(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) archiveCoupon(w http.ResponseWriter, r *http.Request) {
	c, err := s.Billing.ArchiveCoupon(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// applyDiscount puts a coupon on a subscription from its next period invoice on; If-Match is the
// subscription's version.
func (s *Server) applyDiscount(w http.ResponseWriter, r *http.Request) {
	versioned(w, r, decode, func(out billing.Subscription) int { return out.Version },
		func(req applyDiscountRequest, expect int) (billing.Subscription, error) {
			return s.Billing.ApplyDiscount(r.Context(), actorFrom(r), chi.URLParam(r, "id"), req.Coupon, expect, req.Reason)
		})
}
