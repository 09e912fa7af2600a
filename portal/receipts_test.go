package portal_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/portal"
)

type receiptBundle struct {
	env       *testenv.Env
	customer  string
	invoiceID string
}

// setupReceipt subscribes a customer to a KRW plan with a VAT rate on a sim card: the first invoice is
// paid at once.
func setupReceipt(t *testing.T) receiptBundle {
	t.Helper()
	env := testenv.New(t, testenv.Options{Env: map[string]string{"BILLING_MERCHANT_NAME": "던닝웍스 주식회사"}})
	adm, svc := testenv.AdminToken, testenv.ServiceToken
	res := env.Do("POST", "/v1/tax-rates", adm, map[string]any{"name": "부가세 VAT", "percentage": "10", "inclusive": true, "country": "KR"})
	require.Equal(t, 201, res.Status, string(res.Body))
	rate := res.JSON(t)["id"].(string)
	res = env.Do("POST", "/v1/plans", adm, map[string]any{"code": "pro-monthly", "name": "프로 요금제", "amount": "1234500", "currency": "KRW",
		"interval": "month", "interval_count": 1, "tax_rate_id": rate})
	require.Equal(t, 201, res.Status, string(res.Body))
	plan := res.JSON(t)["id"].(string)
	res = env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": "rcpt-1", "email": "kim@example.com", "name": "김민수"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cus := res.JSON(t)["id"].(string)
	res = env.Do("POST", "/v1/customers/"+cus+"/billing-keys", svc, map[string]any{"gateway": "sim", "auth_key": "ok-receipt", "customer_key": "ck-" + cus})
	require.Equal(t, 201, res.Status, string(res.Body))
	res = env.Do("POST", "/v1/subscriptions", svc, map[string]any{"customer_id": cus, "plan_id": plan})
	require.Equal(t, 201, res.Status, string(res.Body))
	res = env.Do("GET", "/v1/invoices?customer_id="+cus, svc, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	data := res.JSON(t)["data"].([]any)
	require.Len(t, data, 1)
	inv := data[0].(map[string]any)
	require.Equal(t, "paid", inv["status"])
	return receiptBundle{env: env, customer: cus, invoiceID: inv["id"].(string)}
}

func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "receipt.pdf")
	require.NoError(t, os.WriteFile(in, pdf, 0o600))
	out, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", in, "-").CombinedOutput()
	require.NoError(t, err, "pdftotext (poppler-utils) must be installed: %s", out)
	return string(out)
}

func TestReceiptPDFReadsRight(t *testing.T) {
	t.Parallel()
	b := setupReceipt(t)
	ctx := context.Background()

	rc, err := b.env.App.Receipts.Receipt(ctx, b.invoiceID)
	require.NoError(t, err)
	require.NotNil(t, rc.Payment)
	require.NotEmpty(t, rc.Payment.MaskedNumber)
	require.Equal(t, "KRW 1,234,500", rc.Total)

	pdf, err := b.env.App.Receipts.PDF(ctx, b.invoiceID)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(pdf), "%PDF-"))
	text := pdfText(t, pdf)
	for _, want := range []string{
		"던닝웍스 주식회사", "영수증 / Receipt", "김민수", "kim@example.com", b.invoiceID, rc.Number,
		"합계 / Total", "KRW 1,234,500", // the total
		"세액 / Tax", "KRW 112,227", // 10% VAT inside 1,234,500: 1,234,500 / 11, rounded
		"공급가액 / Net", "KRW 1,122,273",
		"결제 금액 / Paid", rc.Payment.MaskedNumber, rc.Payment.OrderID,
	} {
		require.Contains(t, text, want, "the receipt's text:\n%s", text)
	}
	require.Regexp(t, regexp.MustCompile(`프로 요금제.*\s+1\s+KRW 1,234,500`), text)
	require.False(t, rc.Payment.Backup, "the default card paid")
	require.NotContains(t, text, "backup card")
}

// A receipt the backup card paid says so next to the card (the receipt email says why).
func TestReceiptPDFMarksTheBackupCard(t *testing.T) {
	t.Parallel()
	paid := time.Date(2027, 2, 8, 7, 0, 0, 0, time.FixedZone("KST", 9*3600))
	rc := portal.Receipt{Merchant: "던닝웍스 주식회사", InvoiceID: "inv_backup", Number: "INV-000004", CustomerName: "김민수",
		CustomerEmail: "kim@example.com", Currency: "KRW", PeriodStart: paid, PeriodEnd: paid.AddDate(0, 0, 7), Total: "KRW 9,900",
		AmountPaid: "KRW 9,900", PaidAt: paid,
		Payment: &portal.ReceiptPayment{Gateway: "sim", CardBrand: "롯데", MaskedNumber: "433012******523*", Backup: true, OrderID: "inv_backup-2", PaidAt: paid}}
	pdf, err := rc.PDF()
	require.NoError(t, err)
	text := pdfText(t, pdf)
	require.Contains(t, text, "롯데 433012******523* (예비 카드 / backup card)", text)
}

func TestReceiptOfAnUnknownInvoiceIsNotFound(t *testing.T) {
	t.Parallel()
	b := setupReceipt(t)
	_, err := b.env.App.Receipts.PDF(context.Background(), "inv_doesnotexist0000000")
	require.True(t, apperr.IsKind(err, apperr.KindNotFound), "%v", err)
}
