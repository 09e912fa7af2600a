package pgsim

import (
	"bytes"
	"time"

	"github.com/shopspring/decimal"
)

// kst is Toss's zone: instants go out with +09:00 and offset-less query dates are read as Korean time.
var kst = time.FixedZone("KST", 9*60*60)

func fmtTime(t time.Time) string { return t.In(kst).Format("2006-01-02T15:04:05Z07:00") }

// fmtWebhookTime renders createdAt the way Toss's webhooks do: KST without an offset, microseconds.
func fmtWebhookTime(t time.Time) string { return t.In(kst).Format("2006-01-02T15:04:05.000000") }

func parseQueryTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05", s, kst)
}

// num is a decimal that travels as a bare JSON number, as Toss amounts do.
type num decimal.Decimal

func (n num) MarshalJSON() ([]byte, error) { return []byte(decimal.Decimal(n).String()), nil }

func (n *num) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*n = num(decimal.Zero)
		return nil
	}
	var d decimal.Decimal
	if err := d.UnmarshalJSON(b); err != nil {
		return err
	}
	*n = num(d)
	return nil
}

type paymentView struct {
	MID                string       `json:"mId"`
	Version            string       `json:"version"`
	LastTransactionKey *string      `json:"lastTransactionKey"`
	PaymentKey         string       `json:"paymentKey"`
	OrderID            string       `json:"orderId"`
	OrderName          string       `json:"orderName"`
	Currency           string       `json:"currency"`
	Method             string       `json:"method"`
	Type               string       `json:"type"`
	Status             string       `json:"status"`
	RequestedAt        string       `json:"requestedAt"`
	ApprovedAt         *string      `json:"approvedAt"`
	TotalAmount        num          `json:"totalAmount"`
	BalanceAmount      num          `json:"balanceAmount"`
	SuppliedAmount     num          `json:"suppliedAmount"`
	VAT                num          `json:"vat"`
	TaxFreeAmount      num          `json:"taxFreeAmount"`
	Card               *cardView    `json:"card"`
	Cancels            []cancelView `json:"cancels"`
	Failure            *tossError   `json:"failure"`
	Country            string       `json:"country"`
}

type cardView struct {
	IssuerCode            string `json:"issuerCode"`
	AcquirerCode          string `json:"acquirerCode"`
	Number                string `json:"number"`
	InstallmentPlanMonths int    `json:"installmentPlanMonths"`
	ApproveNo             string `json:"approveNo"`
	CardType              string `json:"cardType"`
	OwnerType             string `json:"ownerType"`
	Amount                num    `json:"amount"`
}

type cancelView struct {
	TransactionKey string `json:"transactionKey"`
	CancelAmount   num    `json:"cancelAmount"`
	CancelReason   string `json:"cancelReason"`
	CanceledAt     string `json:"canceledAt"`
	CancelStatus   string `json:"cancelStatus"`
}

type issueView struct {
	MID             string   `json:"mId"`
	CustomerKey     string   `json:"customerKey"`
	AuthenticatedAt string   `json:"authenticatedAt"`
	Method          string   `json:"method"`
	BillingKey      string   `json:"billingKey"`
	CardCompany     string   `json:"cardCompany"`
	CardNumber      string   `json:"cardNumber"`
	Card            cardView `json:"card"`
}

type txnView struct {
	MID            string `json:"mId"`
	TransactionKey string `json:"transactionKey"`
	PaymentKey     string `json:"paymentKey"`
	OrderID        string `json:"orderId"`
	Method         string `json:"method"`
	CustomerKey    string `json:"customerKey"`
	UseEscrow      bool   `json:"useEscrow"`
	ReceiptURL     string `json:"receiptUrl"`
	Status         string `json:"status"`
	TransactionAt  string `json:"transactionAt"`
	Currency       string `json:"currency"`
	Amount         num    `json:"amount"`
}

type webhookView struct {
	EventType string      `json:"eventType"`
	CreatedAt string      `json:"createdAt"`
	Data      paymentView `json:"data"`
}

const mid = "pgsim"

var issuerNames = map[string]string{"41": "신한", "61": "현대", "51": "삼성", "11": "국민", "71": "롯데", "4V": "VISA"}

// view renders a ledger record as Toss's Payment object. Must be called with the lock held.
func (s *Server) view(c *charge) paymentView {
	v := paymentView{
		MID: mid, Version: "2022-11-16", PaymentKey: c.PaymentKey, OrderID: c.OrderID, OrderName: c.OrderName,
		Currency: c.Currency, Method: "카드", Type: "BILLING", Status: c.Status,
		RequestedAt: fmtTime(c.RequestedAt), TotalAmount: num(c.Amount), BalanceAmount: num(c.BalanceAmount),
		Failure: c.failure, Country: "KR",
	}
	// Toss's rule: VAT = (totalAmount - taxFreeAmount) / 11, rounded half up; supplied = the rest.
	vat := c.Amount.Sub(c.TaxFreeAmount).DivRound(decimal.NewFromInt(11), 0)
	v.VAT, v.TaxFreeAmount, v.SuppliedAmount = num(vat), num(c.TaxFreeAmount), num(c.Amount.Sub(c.TaxFreeAmount).Sub(vat))
	if c.lastTxKey != "" {
		k := c.lastTxKey
		v.LastTransactionKey = &k
	}
	if !c.ApprovedAt.IsZero() {
		a := fmtTime(c.ApprovedAt)
		v.ApprovedAt = &a
	}
	if k := s.keys[c.BillingKey]; k != nil {
		v.Card = &cardView{IssuerCode: k.Issuer, AcquirerCode: k.Issuer, Number: k.Number, ApproveNo: "00000000",
			CardType: "신용", OwnerType: "개인", Amount: num(c.Amount)}
	}
	for _, x := range c.Cancels {
		v.Cancels = append(v.Cancels, cancelView{TransactionKey: x.TransactionKey, CancelAmount: num(x.Amount),
			CancelReason: x.Reason, CanceledAt: fmtTime(x.CanceledAt), CancelStatus: "DONE"})
	}
	return v
}
