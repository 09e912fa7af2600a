package api_test

import (
	"encoding/csv"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/csvsafe"
)

func TestCSVCellsThatSpreadsheetsReadAsFormulasAreQuoted(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")", "+1": "'+1", "-1+2": "'-1+2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "": "", "9900": "9900", "a=b": "a=b", "INV-000001": "INV-000001",
	} {
		require.Equal(t, want, csvsafe.Cell(in), in)
	}
}

// readCSV parses an export and returns its rows keyed by id (the first column), and the header.
func readCSV(t *testing.T, body []byte) ([]string, map[string]map[string]string) {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err, string(body))
	require.NotEmpty(t, recs, "a header row at least")
	rows := map[string]map[string]string{}
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, col := range recs[0] {
			m[col] = rec[i]
		}
		rows[rec[0]] = m
	}
	return recs[0], rows
}

func TestCSVExports(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	start := env.Now()
	plan := env.CreatePlan("12.50", "USD", "month", 1)
	cus := env.Customer("ok")
	res := env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	list := env.Do("GET", "/v1/invoices?subscription_id="+res.JSON(t)["id"].(string), testenv.SupportToken, nil)
	require.Equal(t, 200, list.Status)
	invoiceID := list.JSON(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	// A reason that a spreadsheet would run as a formula.
	res = env.Do("POST", "/v1/invoices/"+invoiceID+"/refunds", testenv.SupportToken,
		map[string]any{"amount": "2.50", "reason": `=HYPERLINK("http://evil.example","click")`, "to": "credit"})
	require.Equal(t, 201, res.Status, string(res.Body))
	noteID := res.JSON(t)["id"].(string)

	q := "?" + url.Values{"from": {start.Add(-time.Minute).Format(time.RFC3339)}, "to": {start.Add(time.Hour).Format(time.RFC3339)}}.Encode()
	get := func(path, token string) testenv.Response {
		t.Helper()
		res := env.Do("GET", path, token, nil)
		require.Equal(t, 200, res.Status, string(res.Body))
		require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
		require.Contains(t, res.Header.Get("Content-Disposition"), "attachment;")
		return res
	}

	header, rows := readCSV(t, get("/v1/exports/invoices.csv"+q, testenv.SupportToken).Body)
	require.Equal(t, "id", header[0])
	require.Len(t, rows, 1)
	row := rows[invoiceID]
	require.Equal(t, "USD", row["currency"])
	require.Equal(t, "12.50", row["total"], "amounts as decimal strings with the currency's minor unit")
	require.Equal(t, "12.50", row["amount_paid"])
	require.Equal(t, "2.50", row["amount_refunded"])
	require.Equal(t, "paid", row["status"])
	created, err := time.Parse(time.RFC3339, row["created_at"])
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(row["created_at"], "Z"), "UTC")
	require.Equal(t, start, created)
	require.Empty(t, row["voided_at"], "null is an empty cell")

	_, rows = readCSV(t, get("/v1/exports/attempts.csv"+q, testenv.AdminToken).Body)
	require.Len(t, rows, 1)
	for _, a := range rows {
		require.Equal(t, invoiceID, a["invoice_id"])
		require.Equal(t, "succeeded", a["status"])
		require.Equal(t, "12.50", a["amount"])
		require.Equal(t, "1", a["seq"])
		require.Equal(t, "false", a["backup"])
	}

	body := get("/v1/exports/credit-notes.csv"+q, testenv.SupportToken).Body
	_, rows = readCSV(t, body)
	require.Len(t, rows, 1)
	require.Equal(t, "2.50", rows[noteID]["amount"])
	require.Equal(t, `'=HYPERLINK("http://evil.example","click")`, rows[noteID]["reason"], "CSV injection is defused")
	require.NotContains(t, string(body), "\n=HYPERLINK")

	// A range before anything happened: the header row only.
	early := "?" + url.Values{"to": {start.Add(-time.Hour).Format(time.RFC3339)}}.Encode()
	header, rows = readCSV(t, get("/v1/exports/credit-notes.csv"+early, testenv.SupportToken).Body)
	require.Equal(t, []string{"id", "number", "customer_id", "invoice_id", "currency", "amount", "method", "status", "origin", "reason",
		"created_at", "issued_at", "voided_at"}, header)
	require.Empty(t, rows)

	for _, path := range []string{"/v1/exports/invoices.csv", "/v1/exports/attempts.csv", "/v1/exports/credit-notes.csv"} {
		require.Equal(t, 403, env.Do("GET", path, testenv.ServiceToken, nil).Status)
		require.Equal(t, 401, env.Do("GET", path, "", nil).Status)
		res := env.Do("GET", path+"?from=last-week", testenv.SupportToken, nil)
		require.Equal(t, 422, res.Status)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	}
}
