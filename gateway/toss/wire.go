package toss

import (
	"bytes"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// kst is Toss's zone. Toss renders instants with a +09:00 offset and reads offset-less query dates as
// Korean local time; Korea has had no daylight saving since 1988, so a fixed zone is exact.
var kst = time.FixedZone("KST", 9*60*60)

// amount is a decimal that travels as a bare JSON number, as Toss sends and expects amounts. It exists so
// the adapter never flips shopspring's global MarshalJSONWithoutQuotes switch.
type amount decimal.Decimal

func (a amount) MarshalJSON() ([]byte, error) { return []byte(decimal.Decimal(a).String()), nil }

func (a *amount) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = amount(decimal.Zero)
		return nil
	}
	var d decimal.Decimal
	if err := d.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = amount(d)
	return nil
}

func (a amount) dec() decimal.Decimal { return decimal.Decimal(a) }

// errorBody is Toss's error object.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// payment is the subset of Toss's Payment object the adapter reads.
type payment struct {
	PaymentKey         string     `json:"paymentKey"`
	OrderID            string     `json:"orderId"`
	Status             string     `json:"status"`
	TotalAmount        amount     `json:"totalAmount"`
	BalanceAmount      amount     `json:"balanceAmount"`
	VAT                *amount    `json:"vat"`
	Currency           string     `json:"currency"`
	ApprovedAt         string     `json:"approvedAt"`
	RequestedAt        string     `json:"requestedAt"`
	LastTransactionKey string     `json:"lastTransactionKey"`
	Failure            *errorBody `json:"failure"`
	Cancels            []cancel   `json:"cancels"`
}

// cancel is one entry of a Payment's cancels.
type cancel struct {
	TransactionKey string `json:"transactionKey"`
	CancelAmount   amount `json:"cancelAmount"`
	CancelReason   string `json:"cancelReason"`
	CanceledAt     string `json:"canceledAt"`
}

// Toss payment statuses the adapter maps to definite outcomes; READY, IN_PROGRESS and
// WAITING_FOR_DEPOSIT (and anything new) are Unknown.
const (
	statusDone            = "DONE"
	statusCanceled        = "CANCELED"
	statusPartialCanceled = "PARTIAL_CANCELED"
	statusAborted         = "ABORTED"
	statusExpired         = "EXPIRED"
)

// parseTime reads a Toss timestamp. Toss sends RFC 3339 with an offset for payments; webhook createdAt and
// some older fields come without one, and those are Korean local time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, kst)
	if err != nil {
		return time.Time{}, fmt.Errorf("toss time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// queryTime formats an instant the way Toss's list APIs take dates: local (KST) time without an offset.
func queryTime(t time.Time) string { return t.In(kst).Format("2006-01-02T15:04:05") }
