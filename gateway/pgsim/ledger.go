package pgsim

import (
	"time"

	"github.com/shopspring/decimal"
)

// Charge is a payment the simulator committed (or planted).
type Charge struct {
	OrderID       string          `json:"orderId"`
	OrderName     string          `json:"orderName"`
	PaymentKey    string          `json:"paymentKey"`
	BillingKey    string          `json:"billingKey"`
	CustomerKey   string          `json:"customerKey"`
	Amount        decimal.Decimal `json:"amount"`
	BalanceAmount decimal.Decimal `json:"balanceAmount"`
	// TaxFreeAmount is what the merchant said is tax-free; VAT is Toss's rule on the rest (view).
	TaxFreeAmount decimal.Decimal `json:"taxFreeAmount"`
	Currency      string          `json:"currency"`
	// Status is Toss's: DONE, CANCELED, PARTIAL_CANCELED (IN_PROGRESS only while a "processing" fault holds it).
	Status      string    `json:"status"`
	RequestedAt time.Time `json:"requestedAt"`
	ApprovedAt  time.Time `json:"approvedAt"`
	Cancels     []Cancel  `json:"cancels"`
	// Planted marks a charge created or altered through Plant: one the merchant never asked for.
	Planted bool `json:"planted,omitempty"`
}

// Cancel is one (full or partial) cancellation of a charge.
type Cancel struct {
	TransactionKey string          `json:"transactionKey"`
	Amount         decimal.Decimal `json:"amount"`
	Reason         string          `json:"reason"`
	CanceledAt     time.Time       `json:"canceledAt"`
}

// BillingKey is a billing key the simulator issued.
type BillingKey struct {
	BillingKey  string `json:"billingKey"`
	CustomerKey string `json:"customerKey"`
	AuthKey     string `json:"authKey"`
	Behavior    string `json:"behavior"`
	// FlakyLeft counts the soft declines a flaky-N key still has to give.
	FlakyLeft int    `json:"flakyLeft,omitempty"`
	Number    string `json:"cardNumber"`
	Issuer    string `json:"issuerCode"`
}

// DeletedKey is a billing key the merchant deleted.
type DeletedKey struct {
	BillingKey  string    `json:"billingKey"`
	CustomerKey string    `json:"customerKey"`
	DeletedAt   time.Time `json:"deletedAt"`
}

// Plant describes a charge to plant or an amount to alter, for reconciliation tests.
type Plant struct {
	Amount      decimal.Decimal `json:"amount"`
	Currency    string          `json:"currency,omitempty"`
	BillingKey  string          `json:"billingKey,omitempty"`
	CustomerKey string          `json:"customerKey,omitempty"`
	ApprovedAt  time.Time       `json:"approvedAt,omitzero"`
}

// charge is the ledger's record; Charge is its exported snapshot.
type charge struct {
	Charge
	lastTxKey string
	doneTx    *txn
	failure   *tossError // set for ABORTED records (declines), which live in the failed index
	createdAt time.Time
}

type txn struct {
	key        string
	paymentKey string
	orderID    string
	status     string
	at         time.Time
	currency   string
	amount     decimal.Decimal
}

func (c *charge) snapshot() Charge {
	out := c.Charge
	out.Cancels = append([]Cancel(nil), c.Cancels...)
	return out
}
