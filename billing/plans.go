package billing

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// Plan is a price for a recurring interval.
type Plan struct {
	ID            string          `json:"id"`
	Code          string          `json:"code"`
	Name          string          `json:"name"`
	Amount        string          `json:"amount"`
	Currency      string          `json:"currency"`
	Interval      Interval        `json:"interval"`
	IntervalCount int             `json:"interval_count"`
	TrialDays     int             `json:"trial_days"`
	DunningPolicy json.RawMessage `json:"dunning_policy,omitempty"`
	// TaxRateID taxes the plan's invoices (a customer's own rate wins); nil: tax-free.
	TaxRateID *string `json:"tax_rate_id"`
	// RenewalNoticeDays is how many days before a renewal the subscriber is told what will be charged
	// (nil: not told); TrialEndNoticeDays the same before a free trial becomes paid (0: not told).
	RenewalNoticeDays  *int      `json:"renewal_notice_days"`
	TrialEndNoticeDays int       `json:"trial_end_notice_days"`
	CreatedAt          time.Time `json:"created_at"`
}

// NewPlan is the input of CreatePlan.
type NewPlan struct {
	Code          string
	Name          string
	Amount        string
	Currency      string
	Interval      string
	IntervalCount int // 1 to 365; the API fills in 1 when the field is absent
	TrialDays     int
	DunningPolicy json.RawMessage
	TaxRateID     *string
	// RenewalNoticeDays: 1 to MaxNoticeDays, nil for no notice before ordinary renewals.
	RenewalNoticeDays *int
	// TrialEndNoticeDays: 0 (no notice) to MaxNoticeDays; nil is DefaultTrialEndNoticeDays.
	TrialEndNoticeDays *int
}

var planCode = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CreatePlan validates and stores a plan. Its amount, currency and interval become immutable once a
// subscription uses it (the database refuses the update).
func (s *Service) CreatePlan(ctx context.Context, in NewPlan) (Plan, error) {
	var v apperr.Validation
	if !planCode.MatchString(in.Code) {
		v.Add("code", "must be 1-64 letters, digits, '_', '.' or '-'")
	}
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 255 {
		v.Add("name", "is required (at most 255 characters)")
	}
	amount, err := money.ParseNonNegative(in.Amount, in.Currency)
	switch {
	case errors.Is(err, money.ErrUnknownCurrency):
		v.Add("currency", "must be a supported ISO 4217 code (e.g. KRW, USD, JPY, EUR)")
	case err != nil:
		v.Add("amount", "%v", err)
	}
	if !Interval(in.Interval).Valid() {
		v.Add("interval", "must be day, week, month or year")
	}
	if in.IntervalCount < 1 || in.IntervalCount > 365 {
		v.Add("interval_count", "must be from 1 to 365")
	}
	if in.TrialDays < 0 || in.TrialDays > 730 {
		v.Add("trial_days", "must be from 0 to 730")
	}
	if len(in.DunningPolicy) > 0 {
		if _, err := s.policies.For(in.DunningPolicy); err != nil {
			v.Add("dunning_policy", "%v", err)
		}
	}
	if in.RenewalNoticeDays != nil && (*in.RenewalNoticeDays < 1 || *in.RenewalNoticeDays > MaxNoticeDays) {
		v.Add("renewal_notice_days", "must be from 1 to %d, or null for no notice", MaxNoticeDays)
	}
	trialNotice := DefaultTrialEndNoticeDays
	if in.TrialEndNoticeDays != nil {
		trialNotice = *in.TrialEndNoticeDays
		if trialNotice < 0 || trialNotice > MaxNoticeDays {
			v.Add("trial_end_notice_days", "must be from 0 (no notice) to %d", MaxNoticeDays)
		}
	}
	s.checkTaxRateID(ctx, s.pool, in.TaxRateID, &v)
	if err := v.Err(); err != nil {
		return Plan{}, err
	}
	row, err := s.q(s.pool).CreatePlan(ctx, store.CreatePlanParams{
		ID: ids.New("plan"), Code: in.Code, Name: in.Name, Amount: amount, Currency: in.Currency,
		Interval: in.Interval, IntervalCount: int32(in.IntervalCount), TrialDays: int32(in.TrialDays),
		DunningPolicy: in.DunningPolicy, CreatedAt: s.clock.Now(), TaxRateID: in.TaxRateID,
		RenewalNoticeDays: int32Ptr(in.RenewalNoticeDays), TrialEndNoticeDays: int32(trialNotice),
	})
	if dbx.IsUniqueViolation(err, "plans_code_key") {
		conflict := apperr.Conflict("plan_code_taken", "a plan with code %q already exists", in.Code)
		// Name the existing plan: a client whose first request died mid-way can carry on with it.
		if existing, gerr := s.q(s.pool).GetPlanByCode(ctx, in.Code); gerr == nil {
			conflict.Extra = map[string]any{"plan_id": existing.ID}
		}
		return Plan{}, conflict
	}
	if err != nil {
		return Plan{}, err
	}
	return planView(row), nil
}

// GetPlan returns a plan.
func (s *Service) GetPlan(ctx context.Context, id string) (Plan, error) {
	row, err := s.getPlan(ctx, s.pool, id)
	if err != nil {
		return Plan{}, err
	}
	return planView(row), nil
}

func (s *Service) getPlan(ctx context.Context, db dbx.DBTX, id string) (store.Plan, error) {
	row, err := s.q(db).GetPlan(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, apperr.NotFound("plan", id)
	}
	return row, err
}

// ListPlans lists plans, oldest first.
func (s *Service) ListPlans(ctx context.Context, p page.Request) (page.List[Plan], error) {
	rows, err := s.q(s.pool).ListPlans(ctx, store.ListPlansParams{Limit: int32(p.Limit + 1), HasCursor: p.HasCursor(), AfterTime: p.AfterTime, AfterID: p.AfterID})
	if err != nil {
		return page.List[Plan]{}, err
	}
	out := make([]Plan, len(rows))
	for i, r := range rows {
		out[i] = planView(r)
	}
	return page.Build(out, p.Limit, func(p Plan) (time.Time, string) { return p.CreatedAt, p.ID }), nil
}

func planView(r store.Plan) Plan {
	p := Plan{ID: r.ID, Code: r.Code, Name: r.Name, Amount: money.String(r.Amount, r.Currency), Currency: r.Currency,
		Interval: Interval(r.Interval), IntervalCount: int(r.IntervalCount), TrialDays: int(r.TrialDays),
		DunningPolicy: r.DunningPolicy, TaxRateID: r.TaxRateID, CreatedAt: r.CreatedAt, TrialEndNoticeDays: int(r.TrialEndNoticeDays)}
	if r.RenewalNoticeDays != nil {
		p.RenewalNoticeDays = ptr(int(*r.RenewalNoticeDays))
	}
	return p
}

func int32Ptr(v *int) *int32 {
	if v == nil {
		return nil
	}
	return ptr(int32(*v))
}
