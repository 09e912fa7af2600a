package console

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/money"
)

const (
	// listPageSize is how many accounts one page of the list shows.
	listPageSize = 25
	// listCap bounds how many delinquent accounts one list view reads (the service's page size is at
	// most page.Max). Sorting and the per-currency totals cover these; a queue longer than this is
	// narrowed with the filters, and the page says so.
	listCap = 4 * page.Max
)

// Sort orders of the list. "oldest" is the service's own order (longest delinquent first).
var sortOrders = []struct{ Key, Label string }{
	{"oldest", "Longest delinquent"},
	{"amount", "Amount due"},
	{"attempts", "Most attempts"},
	{"next_retry", "Next retry"},
	{"newest", "Most recent"},
}

type delinquentView struct {
	Now       time.Time
	Filter    billing.DelinquentFilter
	MinDays   string
	Sort      string
	Sorts     []struct{ Key, Label string }
	Gateways  []string
	Rows      []billing.DelinquentRow
	Total     int
	Totals    []billing.AmountDue
	Truncated bool
	Page      int
	Pages     int
	PrevURL   string
	NextURL   string
}

// delinquent lists delinquent accounts through billing.ListDelinquent, the REST list's own method, with
// its filters; sorting and paging happen here over what it returned.
func (c *Console) delinquent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := delinquentView{Now: c.Billing.Now(), Sorts: sortOrders, Sort: q.Get("sort"), MinDays: q.Get("min_days"),
		Gateways: c.Gateways,
		Filter:   billing.DelinquentFilter{State: q.Get("state"), Gateway: q.Get("gateway"), DeclineClass: q.Get("decline_class")}}
	if v.Sort == "" {
		v.Sort = "oldest"
	}
	if !validSort(v.Sort) {
		c.fail(w, r, apperr.Invalid("sort", "must be one of oldest, amount, attempts, next_retry, newest"))
		return
	}
	if v.MinDays != "" {
		n, err := strconv.Atoi(v.MinDays)
		if err != nil {
			c.fail(w, r, apperr.Invalid("min_days", "must be a whole number of days"))
			return
		}
		v.Filter.MinDays = n
	}
	v.Page = 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			c.fail(w, r, apperr.Invalid("page", "must be a page number"))
			return
		}
		v.Page = n
	}

	var rows []billing.DelinquentRow
	req := page.Request{Limit: page.Max}
	for {
		list, err := c.Billing.ListDelinquent(r.Context(), v.Filter, req)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		rows = append(rows, list.Data...)
		if list.NextCursor == nil {
			break
		}
		if len(rows) >= listCap {
			v.Truncated = true
			break
		}
		next, err := page.Parse(url.Values{"cursor": {*list.NextCursor}, "limit": {strconv.Itoa(page.Max)}})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		req = next
	}
	sortRows(rows, v.Sort)
	v.Total = len(rows)
	v.Totals = totals(rows)
	v.Pages = max(1, (len(rows)+listPageSize-1)/listPageSize)
	if v.Page > v.Pages {
		v.Page = v.Pages
	}
	from := (v.Page - 1) * listPageSize
	v.Rows = rows[from:min(from+listPageSize, len(rows))]
	if v.Page > 1 {
		v.PrevURL = pageURL(q, v.Page-1)
	}
	if v.Page < v.Pages {
		v.NextURL = pageURL(q, v.Page+1)
	}
	c.render(w, r, http.StatusOK, "delinquent", view{Title: "Delinquent accounts", Nav: "delinquent", Page: v})
}

func validSort(s string) bool {
	for _, o := range sortOrders {
		if o.Key == s {
			return true
		}
	}
	return false
}

// sortRows orders rows; ties keep the service's order (longest delinquent first). Amounts compare within
// a currency only, so currencies are grouped first.
func sortRows(rows []billing.DelinquentRow, by string) {
	dec := func(r billing.DelinquentRow) decimal.Decimal {
		d, err := money.Parse(r.AmountDue, r.Currency)
		if err != nil {
			return decimal.Zero
		}
		return d
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		switch by {
		case "amount":
			if a.Currency != b.Currency {
				return a.Currency < b.Currency
			}
			return dec(a).GreaterThan(dec(b))
		case "attempts":
			return a.Attempts > b.Attempts
		case "next_retry":
			switch {
			case a.NextAttemptAt == nil:
				return false
			case b.NextAttemptAt == nil:
				return true
			}
			return a.NextAttemptAt.Before(*b.NextAttemptAt)
		case "newest":
			return a.DelinquentSince.After(b.DelinquentSince)
		}
		return false
	})
}

// totals sums the amount due per currency.
func totals(rows []billing.DelinquentRow) []billing.AmountDue {
	sum := map[string]decimal.Decimal{}
	for _, r := range rows {
		d, err := money.Parse(r.AmountDue, r.Currency)
		if err != nil {
			continue
		}
		sum[r.Currency] = sum[r.Currency].Add(d)
	}
	out := make([]billing.AmountDue, 0, len(sum))
	for cur, d := range sum {
		out = append(out, billing.AmountDue{Amount: money.String(d, cur), Currency: cur})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out
}

func pageURL(q url.Values, n int) string {
	c := url.Values{}
	for k, v := range q {
		c[k] = v
	}
	c.Set("page", strconv.Itoa(n))
	return "/console/delinquent?" + c.Encode()
}
