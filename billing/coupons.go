package billing

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// Coupon durations.
const (
	DurationOnce      = "once"      // the next period invoice
	DurationRepeating = "repeating" // the next duration_in_intervals period invoices
	DurationForever   = "forever"
)

// ActionApplyDiscount is a coupon applied to a subscription by support, as the audit log names it.
const ActionApplyDiscount = "apply-discount"

// CouponView is API.md's coupon.
type CouponView struct {
	ID                  string     `json:"id"`
	Code                string     `json:"code"`
	Name                string     `json:"name"`
	PercentOff          *string    `json:"percent_off"`
	AmountOff           *string    `json:"amount_off"`
	Currency            *string    `json:"currency"`
	Duration            string     `json:"duration"`
	DurationInIntervals *int       `json:"duration_in_intervals"`
	MaxRedemptions      *int       `json:"max_redemptions"`
	TimesRedeemed       int        `json:"times_redeemed"`
	RedeemBy            *time.Time `json:"redeem_by"`
	PlanIDs             []string   `json:"plan_ids"`
	Valid               bool       `json:"valid"`
	ArchivedAt          *time.Time `json:"archived_at"`
	CreatedAt           time.Time  `json:"created_at"`
}

// NewCoupon is the input of CreateCoupon.
type NewCoupon struct {
	Code                string
	Name                string
	PercentOff          string
	AmountOff           string
	Currency            string
	Duration            string
	DurationInIntervals *int
	MaxRedemptions      *int
	RedeemBy            *time.Time
	PlanIDs             []string
}

var couponCode = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// CreateCoupon validates and stores a coupon. Its terms never change; archiving stops new redemptions
// and leaves the subscriptions that hold it alone.
func (s *Service) CreateCoupon(ctx context.Context, in NewCoupon) (CouponView, error) {
	var v apperr.Validation
	if !couponCode.MatchString(in.Code) {
		v.Add("code", "must be 1-64 letters, digits, '_' or '-'")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		in.Name = in.Code
	}
	if len(in.Name) > 255 {
		v.Add("name", "must be at most 255 characters")
	}
	p := store.CreateCouponParams{ID: ids.New("coupon"), Code: in.Code, Name: in.Name, Duration: in.Duration,
		RedeemBy: in.RedeemBy, PlanIds: in.PlanIDs, CreatedAt: s.clock.Now()}
	if p.PlanIds == nil {
		p.PlanIds = []string{}
	}
	switch {
	case (in.PercentOff == "") == (in.AmountOff == ""):
		v.Add("percent_off", "give either percent_off or amount_off with currency")
	case in.PercentOff != "":
		pct, ok := parsePercent(in.PercentOff)
		if !ok || !pct.IsPositive() {
			v.Add("percent_off", "must be a decimal string above 0 and at most 100, e.g. \"20\"")
		}
		p.PercentOff = decimal.NullDecimal{Decimal: pct, Valid: true}
		if in.Currency != "" {
			v.Add("currency", "goes with amount_off only")
		}
	default:
		amount, err := money.ParseNonNegative(in.AmountOff, in.Currency)
		switch {
		case errors.Is(err, money.ErrUnknownCurrency):
			v.Add("currency", "must be a supported ISO 4217 code; amount_off is in one currency")
		case err != nil:
			v.Add("amount_off", "%v", err)
		case !amount.IsPositive():
			v.Add("amount_off", "must be above 0")
		}
		p.AmountOff, p.Currency = decimal.NullDecimal{Decimal: amount, Valid: true}, &in.Currency
	}
	switch in.Duration {
	case DurationRepeating:
		if in.DurationInIntervals == nil || *in.DurationInIntervals < 1 || *in.DurationInIntervals > 1000 {
			v.Add("duration_in_intervals", "is required with repeating: 1 to 1000 billing periods")
		} else {
			n := int32(*in.DurationInIntervals)
			p.DurationInIntervals = &n
		}
	case DurationOnce, DurationForever:
		if in.DurationInIntervals != nil {
			v.Add("duration_in_intervals", "goes with repeating only")
		}
	default:
		v.Add("duration", "must be once, repeating or forever")
	}
	if in.MaxRedemptions != nil {
		if *in.MaxRedemptions < 1 {
			v.Add("max_redemptions", "must be at least 1")
		}
		n := int32(*in.MaxRedemptions)
		p.MaxRedemptions = &n
	}
	if in.RedeemBy != nil && !in.RedeemBy.After(p.CreatedAt) {
		v.Add("redeem_by", "must be in the future")
	}
	for _, id := range in.PlanIDs {
		if _, err := s.getPlan(ctx, s.pool, id); err != nil {
			v.Add("plan_ids", "plan %s does not exist", id)
		}
	}
	if err := v.Err(); err != nil {
		return CouponView{}, err
	}
	row, err := s.q(s.pool).CreateCoupon(ctx, p)
	if dbx.IsUniqueViolation(err, "coupons_code_key") {
		return CouponView{}, apperr.Conflict("coupon_code_taken", "a coupon with code %q already exists", in.Code)
	}
	if err != nil {
		return CouponView{}, err
	}
	return s.couponView(row), nil
}

// GetCoupon returns a coupon by id or code.
func (s *Service) GetCoupon(ctx context.Context, idOrCode string) (CouponView, error) {
	row, err := s.q(s.pool).GetCouponByIDOrCode(ctx, idOrCode)
	if errors.Is(err, pgx.ErrNoRows) {
		return CouponView{}, apperr.NotFound("coupon", idOrCode)
	}
	if err != nil {
		return CouponView{}, err
	}
	return s.couponView(row), nil
}

// ListCoupons lists coupons, oldest first.
func (s *Service) ListCoupons(ctx context.Context, p page.Request) (page.List[CouponView], error) {
	rows, err := s.q(s.pool).ListCoupons(ctx, store.ListCouponsParams{HasCursor: p.HasCursor(), AfterTime: p.AfterTime,
		AfterID: p.AfterID, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[CouponView]{}, err
	}
	out := make([]CouponView, len(rows))
	for i, r := range rows {
		out[i] = s.couponView(r)
	}
	return page.Build(out, p.Limit, func(c CouponView) (time.Time, string) { return c.CreatedAt, c.ID }), nil
}

// ArchiveCoupon stops new redemptions of a coupon. Subscriptions holding it keep it for its duration.
// Archiving twice is a no-op.
func (s *Service) ArchiveCoupon(ctx context.Context, id string) (CouponView, error) {
	row, err := s.q(s.pool).ArchiveCoupon(ctx, store.ArchiveCouponParams{ID: id, Now: ptr(s.clock.Now())})
	if errors.Is(err, pgx.ErrNoRows) {
		return CouponView{}, apperr.NotFound("coupon", id)
	}
	if err != nil {
		return CouponView{}, err
	}
	return s.couponView(row), nil
}

func ptr[T any](v T) *T { return &v }

func (s *Service) couponView(r store.Coupon) CouponView {
	v := CouponView{ID: r.ID, Code: r.Code, Name: r.Name, Currency: r.Currency, Duration: r.Duration, TimesRedeemed: int(r.TimesRedeemed),
		RedeemBy: r.RedeemBy, PlanIDs: r.PlanIds, ArchivedAt: r.ArchivedAt, CreatedAt: r.CreatedAt}
	if r.PercentOff.Valid {
		v.PercentOff = ptr(r.PercentOff.Decimal.String())
	}
	if r.AmountOff.Valid && r.Currency != nil {
		v.AmountOff = ptr(money.String(r.AmountOff.Decimal, *r.Currency))
	}
	if r.DurationInIntervals != nil {
		v.DurationInIntervals = ptr(int(*r.DurationInIntervals))
	}
	if r.MaxRedemptions != nil {
		v.MaxRedemptions = ptr(int(*r.MaxRedemptions))
	}
	v.Valid = redeemable(r, s.clock.Now()) == nil
	if v.PlanIDs == nil {
		v.PlanIDs = []string{}
	}
	return v
}

// redeemable says why a coupon cannot be redeemed now (nil: it can).
func redeemable(c store.Coupon, now time.Time) error {
	switch {
	case c.ArchivedAt != nil:
		return couponRefused("coupon_archived", "coupon %s is archived", c.Code)
	case c.RedeemBy != nil && !now.Before(*c.RedeemBy):
		return couponRefused("coupon_expired", "coupon %s could be redeemed until %s", c.Code, c.RedeemBy.Format(time.RFC3339))
	case c.MaxRedemptions != nil && c.TimesRedeemed >= *c.MaxRedemptions:
		return couponRefused("coupon_exhausted", "coupon %s has been redeemed %d times, its limit", c.Code, c.TimesRedeemed)
	}
	return nil
}

func couponRefused(code, format string, args ...any) error {
	return &apperr.Error{Kind: apperr.KindValidation, Code: code, Message: fmt.Sprintf(format, args...),
		Fields: []apperr.FieldError{{Field: "coupon", Message: fmt.Sprintf(format, args...)}}}
}

// appliesTo says whether a coupon prices a plan: the plan is among its plans (or it has none), and a
// fixed amount is in the plan's currency.
func appliesTo(c store.Coupon, plan store.Plan) bool {
	if len(c.PlanIds) > 0 && !slices.Contains(c.PlanIds, plan.ID) {
		return false
	}
	return c.Currency == nil || *c.Currency == plan.Currency
}

// discountTerms is how a coupon prices a line.
func discountTerms(c store.Coupon) *Discount {
	d := &Discount{CouponID: c.ID}
	if c.PercentOff.Valid {
		d.PercentOff = c.PercentOff.Decimal
	} else {
		d.AmountOff = c.AmountOff.Decimal
	}
	return d
}

// redeem applies a coupon (by id or code) to a subscription that will be on plan: it counts a redemption
// (refused past max_redemptions, however many run at once), replaces the subscription's active discount,
// and returns the new one. Its periods start with the next period invoice, unless the caller uses it at
// once (a plan change's remaining time).
func (s *Service) redeem(ctx context.Context, tx pgx.Tx, subID, coupon string, plan store.Plan, now time.Time) (store.SubscriptionDiscount, store.Coupon, error) {
	c, err := s.q(tx).GetCouponByIDOrCode(ctx, coupon)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.SubscriptionDiscount{}, c, couponRefused("coupon_not_found", "no coupon has the id or code %q", coupon)
	}
	if err != nil {
		return store.SubscriptionDiscount{}, c, err
	}
	if err := redeemable(c, now); err != nil {
		return store.SubscriptionDiscount{}, c, err
	}
	if !appliesTo(c, plan) {
		return store.SubscriptionDiscount{}, c, couponRefused("coupon_not_applicable", "coupon %s does not apply to plan %s", c.Code, plan.ID)
	}
	c, err = s.q(tx).RedeemCoupon(ctx, c.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.SubscriptionDiscount{}, c, couponRefused("coupon_exhausted", "coupon %s has reached its redemption limit", coupon)
	}
	if err != nil {
		return store.SubscriptionDiscount{}, c, err
	}
	if err := s.q(tx).ReplaceActiveDiscount(ctx, store.ReplaceActiveDiscountParams{SubscriptionID: subID, Now: &now}); err != nil {
		return store.SubscriptionDiscount{}, c, err
	}
	var periods *int32
	switch c.Duration {
	case DurationOnce:
		periods = ptr(int32(1))
	case DurationRepeating:
		periods = c.DurationInIntervals
	}
	d, err := s.q(tx).CreateSubscriptionDiscount(ctx, store.CreateSubscriptionDiscountParams{ID: ids.New("di"), SubscriptionID: subID,
		CouponID: c.ID, PeriodsLeft: periods, RedeemedAt: now})
	if err != nil {
		return d, c, err
	}
	return d, c, s.emit(ctx, tx, EvtSubscriptionDiscounted, Refs{SubscriptionID: subID}, now, map[string]any{"coupon_id": c.ID, "code": c.Code})
}

// EvtSubscriptionDiscounted is emitted when a coupon is applied to a subscription.
const EvtSubscriptionDiscounted = "subscription.discount_applied"

// useDiscount lets a discount price a period: it counts one of its periods and remembers the period, so
// that period's prorations are priced by it too.
func (s *Service) useDiscount(ctx context.Context, tx pgx.Tx, d store.SubscriptionDiscount, periodStart, now time.Time) error {
	left := d.PeriodsLeft
	if left != nil {
		left = ptr(max(*left-1, 0))
	}
	return s.q(tx).UseDiscount(ctx, store.UseDiscountParams{ID: d.ID, PeriodsLeft: left, PeriodStart: &periodStart, Now: &now})
}

// periodDiscount is the active discount that prices a new period on plan (nil: none), and counts the
// period. A discount whose coupon does not apply to the plan counts the period without pricing it.
func (s *Service) periodDiscount(ctx context.Context, tx pgx.Tx, subID string, plan store.Plan, start, now time.Time) (*Discount, error) {
	d, err := s.q(tx).ActiveDiscount(ctx, subID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d.PeriodsLeft != nil && *d.PeriodsLeft == 0 {
		return nil, nil
	}
	c, err := s.q(tx).GetCoupon(ctx, d.CouponID)
	if err != nil {
		return nil, err
	}
	if !appliesTo(c, plan) {
		left := d.PeriodsLeft
		if left != nil {
			left = ptr(max(*left-1, 0))
		}
		return nil, s.q(tx).CountPeriodOfDiscount(ctx, store.CountPeriodOfDiscountParams{ID: d.ID, PeriodsLeft: left, Now: &now})
	}
	if err := s.useDiscount(ctx, tx, d, start, now); err != nil {
		return nil, err
	}
	return discountTerms(c), nil
}

// pricedPeriodDiscount is the coupon that priced the period starting at start, for plan (nil: none, or
// its coupon does not apply to plan).
func (s *Service) pricedPeriodDiscount(ctx context.Context, tx pgx.Tx, subID string, start time.Time, plan store.Plan) (*Discount, error) {
	d, err := s.q(tx).PeriodDiscount(ctx, store.PeriodDiscountParams{SubscriptionID: subID, PeriodStart: &start})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := s.q(tx).GetCoupon(ctx, d.CouponID)
	if err != nil || !appliesTo(c, plan) {
		return nil, err
	}
	return discountTerms(c), nil
}

// SubscriptionDiscount is the coupon a subscription holds.
type SubscriptionDiscount struct {
	ID          string     `json:"id"`
	CouponID    string     `json:"coupon_id"`
	Code        string     `json:"code"`
	PeriodsLeft *int       `json:"periods_left"`
	RedeemedAt  time.Time  `json:"redeemed_at"`
	PeriodStart *time.Time `json:"last_period_start"`
}

// activeDiscountView is the subscription's active discount, or nil.
func (s *Service) activeDiscountView(ctx context.Context, db dbx.DBTX, subID string) (*SubscriptionDiscount, error) {
	d, err := s.q(db).ActiveDiscountView(ctx, subID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := &SubscriptionDiscount{ID: d.ID, CouponID: d.CouponID, Code: d.Code, RedeemedAt: d.RedeemedAt, PeriodStart: d.PeriodStart}
	if d.PeriodsLeft != nil {
		v.PeriodsLeft = ptr(int(*d.PeriodsLeft))
	}
	return v, nil
}

// ApplyDiscount applies a coupon to a subscription from its next period invoice on, replacing the one it
// holds. Support's call is audited with its reason (a.Role support or admin); the merchant's is not.
func (s *Service) ApplyDiscount(ctx context.Context, a Actor, subID, coupon string, expectVersion int, reason string) (Subscription, error) {
	if strings.TrimSpace(coupon) == "" {
		return Subscription{}, apperr.Invalid("coupon", "is required: a coupon id or code")
	}
	audited := a.Role == "support" || a.Role == "admin"
	if audited {
		if err := checkActor(a, reason); err != nil {
			return Subscription{}, err
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock.Now()
		sub, err := s.lockSubscriptionFor(ctx, tx, subID, expectVersion)
		if err != nil {
			return err
		}
		if !renewable(sub.Status) && sub.Status != "paused" && sub.Status != "incomplete" {
			return notAllowedIn(sub, "discount_not_allowed", "a %s subscription takes no coupon", sub.Status)
		}
		planID := sub.PlanID
		if sub.PendingPlanID != nil {
			planID = *sub.PendingPlanID // the next period invoice is the pending plan's
		}
		plan, err := s.q(tx).GetPlan(ctx, planID)
		if err != nil {
			return err
		}
		before, err := s.activeDiscountView(ctx, tx, subID)
		if err != nil {
			return err
		}
		if _, _, err := s.redeem(ctx, tx, subID, coupon, plan, now); err != nil {
			return err
		}
		// The subscription reads differently (its discount): a new version, so ETags and If-Match see it.
		if _, err := s.saveSubscription(ctx, tx, subParams(sub, now)); err != nil {
			return err
		}
		if !audited {
			return nil
		}
		after, err := s.activeDiscountView(ctx, tx, subID)
		if err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, a, ActionApplyDiscount, "subscription", subID, reason, map[string]any{"discount": before}, map[string]any{"discount": after}, now)
	})
	if err != nil {
		return Subscription{}, err
	}
	return s.GetSubscription(ctx, subID)
}
