package billing

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/dunning"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// Customer is a merchant's customer.
type Customer struct {
	ID         string `json:"id"`
	ExternalID string `json:"external_id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	// TimeZone is the customer's IANA zone; dunning retries at its policy's hour there (nil: the policy's).
	TimeZone *string `json:"time_zone"`
	// TaxRateID taxes the customer's invoices, over their plans' rates; nil: the plan's.
	TaxRateID *string `json:"tax_rate_id"`
	// Locale is the language of the customer's emails: "ko" (the default) or "en".
	Locale string `json:"locale"`
	// CreditBalance is the credit the customer holds, per currency; the next invoices spend it.
	CreditBalance []AmountDue `json:"credit_balance"`
	Delinquency   Delinquency `json:"delinquency"`
	CreatedAt     time.Time   `json:"created_at"`
}

// Delinquency summarizes how far behind a customer is.
type Delinquency struct {
	// State is "none", "past_due", "suspended" or "unpaid": the worst among the customer's subscriptions.
	State          string      `json:"state"`
	DaysDelinquent int         `json:"days_delinquent"`
	AmountsDue     []AmountDue `json:"amounts_due"`
}

// AmountDue is money owed in one currency.
type AmountDue struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// NewCustomer is the input of CreateCustomer.
type NewCustomer struct {
	ExternalID string
	Email      string
	Name       string
	TimeZone   *string // optional IANA zone (e.g. "Asia/Seoul")
	TaxRateID  *string // optional tax rate over the plans' rates
	Locale     *string // optional: "ko" (the default) or "en", the language of the customer's emails
}

// Locales are the languages customer emails are written in; the first is the default.
var Locales = []string{"ko", "en"}

// CreateCustomer creates a customer; external_id is unique (409 on clash).
func (s *Service) CreateCustomer(ctx context.Context, in NewCustomer) (Customer, error) {
	var v apperr.Validation
	in.ExternalID, in.Email, in.Name = strings.TrimSpace(in.ExternalID), strings.TrimSpace(in.Email), strings.TrimSpace(in.Name)
	if in.ExternalID == "" || utf8.RuneCountInString(in.ExternalID) > 255 {
		v.Add("external_id", "is required (at most 255 characters)")
	}
	if a, err := mail.ParseAddress(in.Email); err != nil || a.Address != in.Email || len(in.Email) > 320 {
		v.Add("email", "must be an email address")
	}
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 255 {
		v.Add("name", "is required (at most 255 characters)")
	}
	if in.TimeZone != nil {
		if _, err := dunning.LoadZone(*in.TimeZone); err != nil {
			v.Add("time_zone", "%s", err.Error())
		}
	}
	locale := Locales[0]
	if in.Locale != nil {
		if locale = *in.Locale; !slices.Contains(Locales, locale) {
			v.Add("locale", "must be one of %s", strings.Join(Locales, ", "))
		}
	}
	s.checkTaxRateID(ctx, s.pool, in.TaxRateID, &v)
	if err := v.Err(); err != nil {
		return Customer{}, err
	}
	var row store.Customer
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		row, err = s.q(tx).CreateCustomer(ctx, store.CreateCustomerParams{
			ID: ids.New("cus"), ExternalID: in.ExternalID, Email: in.Email, Name: in.Name, Locale: locale, CreatedAt: s.clock.Now(),
		})
		if err == nil && in.TimeZone != nil {
			row, err = s.q(tx).SetCustomerTimeZone(ctx, store.SetCustomerTimeZoneParams{ID: row.ID, TimeZone: in.TimeZone})
		}
		if err == nil && in.TaxRateID != nil {
			row, err = s.q(tx).SetCustomerTaxRate(ctx, store.SetCustomerTaxRateParams{ID: row.ID, TaxRateID: in.TaxRateID})
		}
		return err
	})
	if dbx.IsUniqueViolation(err, "customers_external_id_key") {
		conflict := apperr.Conflict("external_id_taken", "a customer with external_id %q already exists", in.ExternalID)
		// Name the existing customer: a client whose first request died mid-way can carry on with it.
		if existing, gerr := s.q(s.pool).GetCustomerByExternalID(ctx, in.ExternalID); gerr == nil {
			conflict.Extra = map[string]any{"customer_id": existing.ID}
		}
		return Customer{}, conflict
	}
	if err != nil {
		return Customer{}, err
	}
	return s.customerView(ctx, s.pool, row)
}

// GetCustomer returns a customer with its delinquency summary.
func (s *Service) GetCustomer(ctx context.Context, id string) (Customer, error) {
	row, err := s.q(s.pool).GetCustomer(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, apperr.NotFound("customer", id)
	}
	if err != nil {
		return Customer{}, err
	}
	return s.customerView(ctx, s.pool, row)
}

// requireCustomer returns apperr NotFound unless the customer exists.
func (s *Service) requireCustomer(ctx context.Context, db dbx.DBTX, id string) error {
	_, err := s.q(db).GetCustomer(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.NotFound("customer", id)
	}
	return err
}

func (s *Service) customerView(ctx context.Context, db dbx.DBTX, row store.Customer) (Customer, error) {
	c := Customer{ID: row.ID, ExternalID: row.ExternalID, Email: row.Email, Name: row.Name, TimeZone: row.TimeZone, CreatedAt: row.CreatedAt,
		Locale: row.Locale, TaxRateID: row.TaxRateID, Delinquency: Delinquency{State: "none", AmountsDue: []AmountDue{}}, CreditBalance: []AmountDue{}}
	credit, err := s.q(db).AccountBalances(ctx, CreditAccount(row.ID))
	if err != nil {
		return Customer{}, err
	}
	for _, r := range credit {
		if !r.Balance.IsZero() {
			// The credit account is a liability: what is held is its balance negated.
			c.CreditBalance = append(c.CreditBalance, AmountDue{Amount: money.String(r.Balance.Neg(), r.Currency), Currency: r.Currency})
		}
	}
	d, err := s.q(db).CustomerDelinquency(ctx, row.ID)
	if err != nil {
		return Customer{}, err
	}
	c.Delinquency.State = [...]string{"none", "past_due", "suspended", "unpaid"}[d.Severity]
	if since, ok := d.Since.(time.Time); ok && c.Delinquency.State != "none" {
		c.Delinquency.DaysDelinquent = daysBetween(since, s.clock.Now())
	}
	dues, err := s.q(db).CustomerAmountsDue(ctx, row.ID)
	if err != nil {
		return Customer{}, err
	}
	for _, due := range dues {
		c.Delinquency.AmountsDue = append(c.Delinquency.AmountsDue, AmountDue{Amount: money.String(due.Amount, due.Currency), Currency: due.Currency})
	}
	return c, nil
}

func daysBetween(from, to time.Time) int {
	if to.Before(from) {
		return 0
	}
	return int(to.Sub(from) / (24 * time.Hour))
}

// LockCustomer locks the customer's row in tx: the one lock that serializes changes to a customer's
// billing keys (billingkey takes it), so two concurrent first keys cannot both, or neither, become the
// default. A customer that does not exist is not found.
func LockCustomer(ctx context.Context, tx pgx.Tx, customerID string) error {
	_, err := store.New(tx).LockCustomer(ctx, customerID)
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.NotFound("customer", customerID)
	}
	if err != nil {
		return fmt.Errorf("lock customer %s: %w", customerID, err)
	}
	return nil
}

// RequireCustomer answers not found unless the customer exists.
func RequireCustomer(ctx context.Context, db dbx.DBTX, customerID string) error {
	ok, err := store.New(db).CustomerExists(ctx, customerID)
	if err != nil {
		return fmt.Errorf("look up customer %s: %w", customerID, err)
	}
	if !ok {
		return apperr.NotFound("customer", customerID)
	}
	return nil
}
