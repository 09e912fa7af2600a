package billing

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
)

// KoreanVAT is the tax rate every database has from its first migration: 10 %, inclusive.
const KoreanVAT = "txr_kr_vat"

// TaxRateView is API.md's tax rate.
type TaxRateView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Percentage string    `json:"percentage"`
	Inclusive  bool      `json:"inclusive"`
	Country    *string   `json:"country"`
	CreatedAt  time.Time `json:"created_at"`
}

// NewTaxRate is the input of CreateTaxRate.
type NewTaxRate struct {
	Name       string
	Percentage string
	Inclusive  bool
	Country    *string
}

var (
	percentFormat = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,4})?$`)
	countryFormat = regexp.MustCompile(`^[A-Z]{2}$`)
)

// parsePercent reads "10" or "8.875": 0 to 100, at most 4 decimals.
func parsePercent(s string) (decimal.Decimal, bool) {
	if !percentFormat.MatchString(s) {
		return decimal.Zero, false
	}
	d, err := decimal.NewFromString(s)
	if err != nil || d.GreaterThan(hundred) {
		return decimal.Zero, false
	}
	return d, true
}

// CreateTaxRate stores a tax rate. Rates are never changed afterwards: an invoice line keeps the rate it
// was taxed at, and a new rate is a new row.
func (s *Service) CreateTaxRate(ctx context.Context, in NewTaxRate) (TaxRateView, error) {
	var v apperr.Validation
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 255 {
		v.Add("name", "is required (at most 255 characters)")
	}
	pct, ok := parsePercent(in.Percentage)
	if !ok {
		v.Add("percentage", "must be a decimal string from 0 to 100 with at most 4 decimals, e.g. \"10\"")
	}
	if in.Country != nil && !countryFormat.MatchString(*in.Country) {
		v.Add("country", "must be an ISO 3166-1 alpha-2 code, e.g. KR")
	}
	if err := v.Err(); err != nil {
		return TaxRateView{}, err
	}
	row, err := s.q(s.pool).CreateTaxRate(ctx, store.CreateTaxRateParams{ID: ids.New("txr"), Name: in.Name, Percentage: pct,
		Inclusive: in.Inclusive, Country: in.Country, CreatedAt: s.clock.Now()})
	if err != nil {
		return TaxRateView{}, err
	}
	return taxRateView(row), nil
}

// GetTaxRate returns a tax rate.
func (s *Service) GetTaxRate(ctx context.Context, id string) (TaxRateView, error) {
	row, err := s.getTaxRate(ctx, s.pool, id)
	if err != nil {
		return TaxRateView{}, err
	}
	return taxRateView(row), nil
}

func (s *Service) getTaxRate(ctx context.Context, db dbx.DBTX, id string) (store.TaxRate, error) {
	row, err := s.q(db).GetTaxRate(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, apperr.NotFound("tax_rate", id)
	}
	return row, err
}

// ListTaxRates lists tax rates, oldest first (Korean VAT first).
func (s *Service) ListTaxRates(ctx context.Context, p page.Request) (page.List[TaxRateView], error) {
	rows, err := s.q(s.pool).ListTaxRates(ctx, store.ListTaxRatesParams{HasCursor: p.HasCursor(), AfterTime: p.AfterTime,
		AfterID: p.AfterID, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[TaxRateView]{}, err
	}
	out := make([]TaxRateView, len(rows))
	for i, r := range rows {
		out[i] = taxRateView(r)
	}
	return page.Build(out, p.Limit, func(t TaxRateView) (time.Time, string) { return t.CreatedAt, t.ID }), nil
}

func taxRateView(r store.TaxRate) TaxRateView {
	return TaxRateView{ID: r.ID, Name: r.Name, Percentage: r.Percentage.String(), Inclusive: r.Inclusive, Country: r.Country, CreatedAt: r.CreatedAt}
}

// checkTaxRateID is a validation of a tax_rate_id given with a plan or a customer: 422 when unknown.
func (s *Service) checkTaxRateID(ctx context.Context, db dbx.DBTX, id *string, v *apperr.Validation) {
	if id == nil {
		return
	}
	if _, err := s.getTaxRate(ctx, db, *id); err != nil {
		v.Add("tax_rate_id", "tax rate %s does not exist", *id)
	}
}

// SetCustomerTaxRate attaches a tax rate to a customer (nil detaches it); it prices their invoices from
// the next one on, over the plan's rate.
func (s *Service) SetCustomerTaxRate(ctx context.Context, customerID string, taxRateID *string) (Customer, error) {
	if err := s.requireCustomer(ctx, s.pool, customerID); err != nil {
		return Customer{}, err
	}
	var v apperr.Validation
	s.checkTaxRateID(ctx, s.pool, taxRateID, &v)
	if err := v.Err(); err != nil {
		return Customer{}, err
	}
	row, err := s.q(s.pool).SetCustomerTaxRate(ctx, store.SetCustomerTaxRateParams{ID: customerID, TaxRateID: taxRateID})
	if err != nil {
		return Customer{}, err
	}
	return s.customerView(ctx, s.pool, row)
}

// taxRateFor is the rate that taxes a customer's lines for a plan: the customer's (their jurisdiction,
// or an exemption given as a 0 % rate) over the plan's; nil when neither has one.
func (s *Service) taxRateFor(ctx context.Context, db dbx.DBTX, customerID string, plan store.Plan) (*TaxRate, error) {
	cus, err := s.q(db).GetCustomer(ctx, customerID)
	if err != nil {
		return nil, err
	}
	id := cus.TaxRateID
	if id == nil {
		id = plan.TaxRateID
	}
	if id == nil {
		return nil, nil
	}
	row, err := s.q(db).GetTaxRate(ctx, *id)
	if err != nil {
		return nil, err
	}
	return &TaxRate{ID: row.ID, Name: row.Name, Percentage: row.Percentage, Inclusive: row.Inclusive}, nil
}

// periodDraft is a subscription's invoice for one period at the plan's price, with the subscription's
// coupon and the tax rate. It counts one of the coupon's periods: callers invoice a period once (the
// renewal under the subscription's lock and its next_renewal_at, the first invoice with the subscription),
// and a failure rolls the count back with everything else.
func (s *Service) periodDraft(ctx context.Context, tx pgx.Tx, sub store.Subscription, plan store.Plan, kind string, start, end time.Time) (draftInvoice, error) {
	d := periodInvoice(sub, plan, kind, start, end)
	rate, err := s.taxRateFor(ctx, tx, sub.CustomerID, plan)
	if err != nil {
		return d, err
	}
	disc, err := s.periodDiscount(ctx, tx, sub.ID, plan, start, s.clock.Now())
	if err != nil {
		return d, err
	}
	for i := range d.Lines {
		d.Lines[i].TaxRate, d.Lines[i].Discount = rate, disc
	}
	return d, nil
}

// priceProration prices a plan change's lines, each at its own plan's tax rate and with the coupon that
// priced the current period (when it applies to the line's plan): unused time is credited at what was paid
// for it, and the rest of the period costs what the period's coupon makes it cost. A coupon redeemed with
// the change itself (newDiscount) prices the remaining time instead.
func (s *Service) priceProration(ctx context.Context, tx pgx.Tx, sub store.Subscription, old, next store.Plan, lines []draftLine, newDiscount *Discount) error {
	for i := range lines {
		plan := next
		if lines[i].Amount.IsNegative() {
			plan = old
		}
		rate, err := s.taxRateFor(ctx, tx, sub.CustomerID, plan)
		if err != nil {
			return err
		}
		lines[i].TaxRate = rate
		if newDiscount != nil && plan.ID == next.ID && !lines[i].Amount.IsNegative() {
			lines[i].Discount = newDiscount
			continue
		}
		if lines[i].Discount, err = s.pricedPeriodDiscount(ctx, tx, sub.ID, sub.CurrentPeriodStart, plan); err != nil {
			return err
		}
	}
	return nil
}
