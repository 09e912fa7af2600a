package toss

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dunningworks/billing/gateway"
)

// maxPageSize is Toss's maximum page for the transaction list.
const maxPageSize = 10000

type transaction struct {
	TransactionKey string `json:"transactionKey"`
	PaymentKey     string `json:"paymentKey"`
	OrderID        string `json:"orderId"`
	Status         string `json:"status"`
	TransactionAt  string `json:"transactionAt"`
	Currency       string `json:"currency"`
	Amount         amount `json:"amount"`
}

// Transactions lists transactions with transactionAt in [from, to): GET /v1/transactions.
//
// Toss takes startDate/endDate as offset-less local datetimes (2026-01-01T00:00:00) and reads them as
// Korean time; the adapter sends KST. Because a wrong guess about that zone or about whether endDate is
// inclusive would silently drop a reconciliation line, the adapter asks for a window one day wider on each
// side and keeps exactly [from, to) by each line's own offset-carrying transactionAt. Pages are followed
// with startingAfter until a short page.
func (a *Adapter) Transactions(ctx context.Context, from, to time.Time) ([]gateway.Transaction, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: empty window [%s, %s)", ErrInvalidRequest, from, to)
	}
	q := url.Values{}
	q.Set("startDate", queryTime(from.Add(-24*time.Hour)))
	q.Set("endDate", queryTime(to.Add(24*time.Hour)))
	q.Set("limit", strconv.Itoa(a.pageSize))
	var out []gateway.Transaction
	for {
		ans, err := a.do(ctx, http.MethodGet, "/v1/transactions?"+q.Encode(), "", "", nil)
		if err != nil {
			if !wasSent(err) {
				return nil, a.notSent(err)
			}
			return nil, fmt.Errorf("%s: transactions: %w", a.name, err)
		}
		if ans.status == http.StatusTooManyRequests {
			return nil, a.tryLater(ans)
		}
		if ans.status != http.StatusOK {
			e, _ := parseError(ans.body)
			return nil, fmt.Errorf("%s: transactions: %w", a.name, &APIError{Status: ans.status, Code: e.Code, Message: e.Message})
		}
		var page []transaction
		if err := json.Unmarshal(ans.body, &page); err != nil {
			return nil, fmt.Errorf("%s: transactions: unparseable answer: %w", a.name, err)
		}
		for _, t := range page {
			at, err := parseTime(t.TransactionAt)
			if err != nil {
				return nil, fmt.Errorf("%s: transaction %s: %w", a.name, t.TransactionKey, err)
			}
			if at.Before(from) || !at.Before(to) {
				continue
			}
			cur := t.Currency
			if cur == "" {
				cur = "KRW"
			}
			out = append(out, gateway.Transaction{
				TransactionKey: t.TransactionKey,
				PaymentKey:     t.PaymentKey,
				OrderID:        t.OrderID,
				Status:         t.Status,
				At:             at,
				Amount:         t.Amount.dec(),
				Currency:       cur,
			})
		}
		if len(page) < a.pageSize {
			return out, nil
		}
		q.Set("startingAfter", page[len(page)-1].TransactionKey)
	}
}
