package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
	"github.com/dunningworks/billing/money"
)

// Ledger accounts. Entries are signed: a debit is positive, a credit negative.
const (
	AccountRevenue = "revenue"
	AccountBadDebt = "bad_debt"
	AccountRefunds = "refunds"
	// AccountCreditNotes is the contra-revenue account of credit notes that lower an open invoice; money
	// given back (to the card or the customer's balance) goes through AccountRefunds (docs/refunds.md).
	AccountCreditNotes = "credit_notes"
	AccountOfflineCash = "cash:offline"
	// AccountDiscounts is money off given by coupons (contra-revenue: a debit), net of the tax inside it.
	AccountDiscounts = "discounts"
	// AccountTaxOwed is tax collected for the tax authority (a liability: a credit balance).
	AccountTaxOwed = "tax_owed"
	// AccountCreditGranted is credit support gave customers (an expense: a debit balance).
	AccountCreditGranted = "credit_granted"
)

// ReceivableAccount is what a customer owes us.
func ReceivableAccount(customerID string) string { return "receivable:" + customerID }

// ClearingAccount is money collected at a gateway and not yet settled to us.
func ClearingAccount(gateway string) string { return "clearing:" + gateway }

// CreditAccount is credit a customer holds with us (e.g. from an immediate downgrade).
func CreditAccount(customerID string) string { return "credit:" + customerID }

// Entry is one leg of a ledger transaction.
type Entry struct {
	Account  string
	Currency string
	Amount   decimal.Decimal // debit > 0, credit < 0
}

// errAlreadyPosted means the (kind, reference) transaction exists: the caller is a retry.
var errAlreadyPosted = errors.New("ledger transaction already posted")

// post writes one balanced transaction. (kind, reference) is unique, so a retried step cannot post twice:
// it gets errAlreadyPosted. The database checks the balance again at commit.
func (s *Service) post(ctx context.Context, db dbx.DBTX, kind, reference, customerID, description string, at time.Time, entries ...Entry) error {
	sums := map[string]decimal.Decimal{}
	for _, e := range entries {
		if !money.Round(e.Amount, e.Currency).Equal(e.Amount) {
			return fmt.Errorf("ledger %s/%s: %s is not a whole amount of %s", kind, reference, e.Amount, e.Currency)
		}
		sums[e.Currency] = sums[e.Currency].Add(e.Amount)
	}
	for cur, sum := range sums {
		if !sum.IsZero() {
			return fmt.Errorf("ledger %s/%s does not balance in %s (%s)", kind, reference, cur, sum)
		}
	}
	id, err := s.q(db).CreateLedgerTransaction(ctx, store.CreateLedgerTransactionParams{
		Kind: kind, Reference: reference, CustomerID: strPtr(customerID), Description: description, CreatedAt: at,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errAlreadyPosted
	}
	if err != nil {
		return fmt.Errorf("ledger %s/%s: %w", kind, reference, err)
	}
	for _, e := range entries {
		if e.Amount.IsZero() {
			continue
		}
		if err := s.q(db).AddLedgerEntry(ctx, store.AddLedgerEntryParams{TransactionID: id, Account: e.Account, Currency: e.Currency, Amount: e.Amount}); err != nil {
			return fmt.Errorf("ledger %s/%s entry: %w", kind, reference, err)
		}
	}
	return nil
}

// TrialBalance is the sum of the ledger per account and currency.
type TrialBalance struct {
	Balanced   bool             `json:"balanced"`
	Currencies []CurrencyTotals `json:"currencies"`
	Accounts   []AccountBalance `json:"accounts"`
}

// CurrencyTotals are the debits and credits in one currency; balanced when equal.
type CurrencyTotals struct {
	Currency string `json:"currency"`
	Debits   string `json:"debits"`
	Credits  string `json:"credits"`
}

// AccountBalance is one account's balance in one currency.
type AccountBalance struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Balance  string `json:"balance"`
}

// TrialBalance proves the ledger: every currency's debits equal its credits.
func (s *Service) TrialBalance(ctx context.Context) (TrialBalance, error) {
	rows, err := s.q(s.pool).TrialBalance(ctx)
	if err != nil {
		return TrialBalance{}, err
	}
	tb := TrialBalance{Balanced: true, Currencies: []CurrencyTotals{}, Accounts: []AccountBalance{}}
	debits, credits := map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	var order []string
	for _, r := range rows {
		if _, seen := debits[r.Currency]; !seen {
			order = append(order, r.Currency)
			debits[r.Currency] = decimal.Zero
		}
		debits[r.Currency] = debits[r.Currency].Add(r.Debits)
		credits[r.Currency] = credits[r.Currency].Add(r.Credits)
		tb.Accounts = append(tb.Accounts, AccountBalance{Account: r.Account, Currency: r.Currency, Balance: money.String(r.Balance, r.Currency)})
	}
	for _, c := range order {
		if !debits[c].Equal(credits[c]) {
			tb.Balanced = false
		}
		tb.Currencies = append(tb.Currencies, CurrencyTotals{Currency: c, Debits: money.String(debits[c], c), Credits: money.String(credits[c], c)})
	}
	return tb, nil
}

// CustomerBalance is what a customer owes (receivable) and holds as credit, per currency.
type CustomerBalance struct {
	CustomerID string      `json:"customer_id"`
	Receivable []AmountDue `json:"receivable"`
	Credit     []AmountDue `json:"credit"`
}

// GetCustomerBalance reads the customer's receivable and credit accounts.
func (s *Service) GetCustomerBalance(ctx context.Context, customerID string) (CustomerBalance, error) {
	if err := s.requireCustomer(ctx, s.pool, customerID); err != nil {
		return CustomerBalance{}, err
	}
	b := CustomerBalance{CustomerID: customerID, Receivable: []AmountDue{}, Credit: []AmountDue{}}
	rec, err := s.q(s.pool).AccountBalances(ctx, ReceivableAccount(customerID))
	if err != nil {
		return b, err
	}
	for _, r := range rec {
		b.Receivable = append(b.Receivable, AmountDue{Amount: money.String(r.Balance, r.Currency), Currency: r.Currency})
	}
	cr, err := s.q(s.pool).AccountBalances(ctx, CreditAccount(customerID))
	if err != nil {
		return b, err
	}
	for _, r := range cr {
		// The credit account is a liability: its balance is negative (a credit); show what is held.
		b.Credit = append(b.Credit, AmountDue{Amount: money.String(r.Balance.Neg(), r.Currency), Currency: r.Currency})
	}
	return b, nil
}
