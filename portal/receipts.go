package portal

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/statemachine"
)

// nanumGothic is NanumGothic (SIL Open Font License 1.1, fonts/NanumGothic-LICENSE.txt, from Debian's
// fonts-nanum): the PDF embeds the subset it uses, so Korean text renders on any reader.
//
//go:embed fonts/NanumGothic.ttf
var nanumGothic []byte

// Invoices is what receipts read from billing.
type Invoices interface {
	GetInvoice(ctx context.Context, id string) (billing.Invoice, error)
	GetCustomer(ctx context.Context, id string) (billing.Customer, error)
	// InvoicePayment is the card charge that paid the invoice (ok false: no card paid it); the receipt
	// email names the same one.
	InvoicePayment(ctx context.Context, invoiceID string) (p billing.CardPayment, ok bool, err error)
}

// Receipts renders a paid invoice as a receipt: data for the HTML page, and a PDF for the page's download
// and the receipt email's attachment.
type Receipts struct {
	invoices Invoices
	merchant string
	zone     *time.Location
}

// NewReceipts builds receipts over billing's invoices and payments; merchant is BILLING_MERCHANT_NAME.
// Times are shown in Korea's zone (KST), as the invoices' customers expect.
func NewReceipts(invoices Invoices, merchant string) *Receipts {
	zone, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		zone = time.FixedZone("KST", 9*3600)
	}
	return &Receipts{invoices: invoices, merchant: merchant, zone: zone}
}

// Receipt is a paid invoice as a document shows it. Amounts are formatted for people ("KRW 9,900").
type Receipt struct {
	Merchant      string
	InvoiceID     string
	Number        string
	CustomerID    string
	CustomerName  string
	CustomerEmail string
	Currency      string
	PeriodStart   time.Time
	PeriodEnd     time.Time
	Lines         []ReceiptLine
	Subtotal      string
	Discount      string // empty when nothing was taken off
	SupplyValue   string // 공급가액
	Tax           string
	Total         string
	CreditApplied string // empty when no credit was spent
	AmountPaid    string
	PaidAt        time.Time
	Payment       *ReceiptPayment // nil when no card paid (credit, an offline payment)
}

// ReceiptLine is one line of a receipt.
type ReceiptLine struct {
	Description string
	Quantity    int
	Amount      string
}

// ReceiptPayment is the card payment that paid the invoice.
type ReceiptPayment struct {
	Gateway      string
	CardBrand    string
	MaskedNumber string
	// Backup: the customer's backup card paid, after the default card could not be charged.
	Backup  bool
	OrderID string
	PaidAt  time.Time
}

// ErrNoReceipt is the answer for an invoice that has not been paid: it has no receipt yet.
func errNoReceipt(invoiceID string) error {
	return &apperr.Error{Kind: apperr.KindNotFound, Code: "receipt_not_found",
		Message: "invoice " + invoiceID + " has no receipt: it is not paid"}
}

// Receipt loads a paid invoice's receipt.
func (r *Receipts) Receipt(ctx context.Context, invoiceID string) (Receipt, error) {
	inv, err := r.invoices.GetInvoice(ctx, invoiceID)
	if err != nil {
		return Receipt{}, err
	}
	if inv.Status != string(statemachine.InvoicePaid) || inv.PaidAt == nil {
		return Receipt{}, errNoReceipt(invoiceID)
	}
	cus, err := r.invoices.GetCustomer(ctx, inv.CustomerID)
	if err != nil {
		return Receipt{}, err
	}
	cur := inv.Currency
	out := Receipt{Merchant: r.merchant, InvoiceID: inv.ID, CustomerID: cus.ID, CustomerName: cus.Name, CustomerEmail: cus.Email,
		Currency: cur, PeriodStart: inv.PeriodStart.In(r.zone), PeriodEnd: inv.PeriodEnd.In(r.zone),
		Subtotal: Amount(inv.Subtotal, cur), SupplyValue: Amount(inv.TotalExcludingTax, cur), Tax: Amount(inv.Tax, cur),
		Total: Amount(inv.Total, cur), AmountPaid: Amount(inv.AmountPaid, cur), PaidAt: inv.PaidAt.In(r.zone)}
	if inv.Number != nil {
		out.Number = *inv.Number
	}
	if !isZero(inv.TotalDiscount) {
		out.Discount = "-" + Amount(inv.TotalDiscount, cur)
	}
	if !isZero(inv.CreditApplied) {
		out.CreditApplied = Amount(inv.CreditApplied, cur)
	}
	for _, l := range inv.Lines {
		out.Lines = append(out.Lines, ReceiptLine{Description: l.Description, Quantity: l.Quantity, Amount: Amount(l.Total, cur)})
	}
	p, ok, err := r.invoices.InvoicePayment(ctx, invoiceID)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt %s: payment: %w", invoiceID, err)
	}
	if ok {
		out.Payment = &ReceiptPayment{Gateway: p.Gateway, CardBrand: p.Card.Brand, MaskedNumber: p.Card.MaskedNumber, Backup: p.Backup,
			OrderID: p.OrderID, PaidAt: p.PaidAt.In(r.zone)}
	}
	return out, nil
}

// PDF is the paid invoice's receipt as a PDF (A4, Korean and English labels). It is what the receipt
// email attaches (mail.Receipts) and what the customer page downloads.
func (r *Receipts) PDF(ctx context.Context, invoiceID string) ([]byte, error) {
	rc, err := r.Receipt(ctx, invoiceID)
	if err != nil {
		return nil, err
	}
	return rc.PDF()
}

// PDF renders the receipt.
func (rc Receipt) PDF() ([]byte, error) {
	const font = "NanumGothic"
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Receipt "+rc.Number, true)
	pdf.SetAuthor(rc.Merchant, true)
	pdf.SetCreator("dunningworks billing", true)
	// A fixed creation date keeps the bytes a function of the receipt (the paid time).
	pdf.SetCreationDate(rc.PaidAt)
	pdf.SetModificationDate(rc.PaidAt)
	pdf.AddUTF8FontFromBytes(font, "", nanumGothic)
	pdf.SetMargins(20, 20, 20)
	pdf.AddPage()

	pdf.SetFont(font, "", 18)
	pdf.CellFormat(0, 10, rc.Merchant, "", 1, "L", false, 0, "")
	pdf.SetFont(font, "", 14)
	pdf.CellFormat(0, 9, "영수증 / Receipt", "", 1, "L", false, 0, "")
	pdf.Ln(3)

	pdf.SetFont(font, "", 10)
	row := func(label, value string) {
		pdf.CellFormat(55, 6, label, "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 6, value, "", 1, "L", false, 0, "")
	}
	row("영수증 번호 / Number", rc.Number)
	row("청구서 / Invoice", rc.InvoiceID)
	row("고객 / Customer", strings.TrimSpace(rc.CustomerName+" <"+rc.CustomerEmail+">"))
	row("기간 / Period", rc.PeriodStart.Format("2006-01-02")+" – "+rc.PeriodEnd.Format("2006-01-02"))
	row("결제일 / Paid at", rc.PaidAt.Format("2006-01-02 15:04 MST"))
	pdf.Ln(4)

	pdf.SetFillColor(238, 238, 238)
	pdf.CellFormat(110, 7, "항목 / Description", "B", 0, "L", true, 0, "")
	pdf.CellFormat(20, 7, "수량 / Qty", "B", 0, "R", true, 0, "")
	pdf.CellFormat(0, 7, "금액 / Amount", "B", 1, "R", true, 0, "")
	for _, l := range rc.Lines {
		pdf.CellFormat(110, 7, l.Description, "", 0, "L", false, 0, "")
		pdf.CellFormat(20, 7, fmt.Sprint(l.Quantity), "", 0, "R", false, 0, "")
		pdf.CellFormat(0, 7, l.Amount, "", 1, "R", false, 0, "")
	}
	pdf.Ln(2)
	total := func(label, value string) {
		if value == "" {
			return
		}
		pdf.CellFormat(110, 6, "", "", 0, "L", false, 0, "")
		pdf.CellFormat(30, 6, label, "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 6, value, "", 1, "R", false, 0, "")
	}
	total("소계 / Subtotal", rc.Subtotal)
	total("할인 / Discount", rc.Discount)
	total("공급가액 / Net", rc.SupplyValue)
	total("세액 / Tax", rc.Tax)
	total("합계 / Total", rc.Total)
	total("크레딧 / Credit", rc.CreditApplied)
	pdf.SetFont(font, "", 12)
	total("결제 금액 / Paid", rc.AmountPaid)
	pdf.SetFont(font, "", 10)
	pdf.Ln(4)

	if p := rc.Payment; p != nil {
		pdf.CellFormat(0, 7, "결제 수단 / Payment", "B", 1, "L", false, 0, "")
		card := strings.TrimSpace(p.CardBrand + " " + p.MaskedNumber)
		if p.Backup {
			card += " (예비 카드 / backup card)"
		}
		row("카드 / Card", card)
		row("주문 번호 / Order id", p.OrderID)
		row("승인 시각 / Approved at", p.PaidAt.Format("2006-01-02 15:04 MST"))
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("receipt %s: pdf: %w", rc.InvoiceID, err)
	}
	return buf.Bytes(), nil
}
