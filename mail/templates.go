package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/shopspring/decimal"
)

//go:embed templates
var builtinFS embed.FS

// Locales are the languages emails are written in (billing.Locales: a customer's locale is one of them).
var Locales = []string{"ko", "en"}

// Data is what a template sees. Times are domain time, shown in the customer's zone by the date and
// datetime functions; amounts are decimal strings, shown by money.
type Data struct {
	Kind   Kind
	Locale string
	// Merchant is the sender's display name (BILLING_MAIL_FROM's name, else its address).
	Merchant string
	Customer CustomerData
	// Link is the customer's page (a signed link: the card can be changed and open invoices paid there);
	// empty when no link can be made.
	Link         string
	Invoice      *InvoiceData
	Subscription *SubscriptionData
	// DeclineCode is the gateway's code of a failed payment ("" when no charge was made, e.g. no card).
	DeclineCode string
	// NoCard: the payment failed because the customer has no card that can be charged.
	NoCard bool
	// NextRetryAt is when a soft-declined payment is tried again (nil: no retry is scheduled).
	NextRetryAt *time.Time
	// GraceEndsAt is when a past-due subscription is suspended if still unpaid; DunningEndsAt when it ends.
	GraceEndsAt   *time.Time
	DunningEndsAt *time.Time
	// Unpaid: dunning ended with the subscription marked unpaid rather than canceled.
	Unpaid bool
	// PreviousPlan and Plan name the plans of a plan change (Plan is also the subscription's plan).
	PreviousPlan     string
	PreviousQuantity int
	// RenewsAt is when an upcoming renewal charges; Trial says it is a free trial converting to paid.
	RenewsAt *time.Time
	Trial    bool
	// Renewal is what an upcoming renewal charges, priced when the notice was recorded (nil in other
	// kinds' emails).
	Renewal *RenewalData
	// Receipt: a PDF receipt is attached.
	Receipt bool
	// Backup is the backup card a failed payment's invoice goes to next, and when (nil: none is
	// scheduled; the next try, if any, is the same card's at NextRetryAt).
	Backup *BackupData
	// Payment is the card charge that paid a receipt's invoice (nil in other kinds' emails, and when no
	// card paid it: credit, a credit note, an offline payment).
	Payment *PaymentData
}

// PaymentData names the card a receipt's invoice was charged to. Card is its brand and last four,
// "VISA •••• 4242". Backup says the customer's backup card was charged because the default card could
// not be; DeclinedCard then names the default card that was declined ("" when there was no default card
// that could be charged at all).
type PaymentData struct {
	Card         string
	Backup       bool
	DeclinedCard string
}

// BackupData is the backup card dunning charges next: Card is its brand and last four, At when.
type BackupData struct {
	Card string
	At   time.Time
}

// CustomerData is the customer an email is for.
type CustomerData struct {
	Name  string
	Email string
	// Zone is the customer's time zone (Asia/Seoul unless they have their own).
	Zone *time.Location
}

// InvoiceData is the invoice an email is about.
type InvoiceData struct {
	ID, Number                   string
	Currency                     string
	Total, AmountDue, AmountPaid string
	PeriodStart, PeriodEnd       time.Time
	PaidAt                       *time.Time
	Lines                        []LineData
}

// LineData is one line of an invoice.
type LineData struct {
	Description string
	Amount      string
}

// RenewalData is an upcoming renewal's charge: Amount is the invoice's total, tax included (Tax of it,
// HasTax when there is any); AmountDue is what the card is charged after the customer's credit
// (CreditApplied, HasCredit when any is spent).
type RenewalData struct {
	Plan                                  string
	Quantity                              int
	Currency                              string
	Amount, Tax, CreditApplied, AmountDue string
	HasTax, HasCredit                     bool
}

// SubscriptionData is the subscription an email is about.
type SubscriptionData struct {
	ID, Status       string
	Plan             string
	Quantity         int
	Amount, Currency string // the plan's price per period
	PeriodEnd        time.Time
	NextRenewalAt    *time.Time
}

// Rendered is an email ready to send.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// Templates are the parsed templates: per locale and kind a text template (which defines "subject")
// and an HTML one (which the locale's layout wraps).
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

func key(locale string, k Kind) string { return locale + "/" + string(k) }

// LoadTemplates parses the built-in templates, each replaced by a file of the same path under dir
// (<locale>/<kind>.txt, <locale>/<kind>.html, <locale>/layout.html) when dir is given and has it. Every
// template is rendered once with sample data, so a broken override refuses the start, not an email.
func LoadTemplates(dir string) (*Templates, error) {
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		return builtinFS.ReadFile("templates/" + name)
	}
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, loc := range Locales {
		layout, err := read(loc + "/layout.html")
		if err != nil {
			return nil, fmt.Errorf("mail template %s/layout.html: %w", loc, err)
		}
		for _, k := range Kinds {
			name := key(loc, k)
			txt, err := read(name + ".txt")
			if err != nil {
				return nil, fmt.Errorf("mail template %s.txt: %w", name, err)
			}
			tt, err := texttemplate.New(name + ".txt").Funcs(textFuncs(loc)).Option("missingkey=error").Parse(string(txt))
			if err != nil {
				return nil, fmt.Errorf("mail template %s.txt: %w", name, err)
			}
			if tt.Lookup("subject") == nil {
				return nil, fmt.Errorf("mail template %s.txt: defines no \"subject\"", name)
			}
			body, err := read(name + ".html")
			if err != nil {
				return nil, fmt.Errorf("mail template %s.html: %w", name, err)
			}
			ht, err := htmltemplate.New("layout").Funcs(htmlFuncs(loc)).Option("missingkey=error").Parse(string(layout))
			if err == nil {
				ht, err = ht.New(name + ".html").Parse(string(body))
			}
			if err != nil {
				return nil, fmt.Errorf("mail template %s.html: %w", name, err)
			}
			t.text[name], t.html[name] = tt, ht
			if _, err := t.Render(loc, k, SampleData(loc, k)); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// Render writes one email.
func (t *Templates) Render(locale string, k Kind, d Data) (Rendered, error) {
	name := key(locale, k)
	tt, ht := t.text[name], t.html[name]
	if tt == nil || ht == nil {
		return Rendered{}, fmt.Errorf("no mail template %s", name)
	}
	d.Kind, d.Locale = k, locale
	if d.Customer.Zone == nil {
		d.Customer.Zone = seoul
	}
	var subj, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subj, "subject", d); err != nil {
		return Rendered{}, fmt.Errorf("mail template %s.txt subject: %w", name, err)
	}
	if err := tt.Execute(&text, d); err != nil {
		return Rendered{}, fmt.Errorf("mail template %s.txt: %w", name, err)
	}
	if err := ht.ExecuteTemplate(&html, "layout", d); err != nil {
		return Rendered{}, fmt.Errorf("mail template %s.html: %w", name, err)
	}
	return Rendered{Subject: strings.Join(strings.Fields(subj.String()), " "), Text: strings.TrimSpace(text.String()) + "\n", HTML: html.String()}, nil
}

var seoul = func() *time.Location {
	l, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		return time.FixedZone("KST", 9*3600)
	}
	return l
}()

func funcs(locale string) map[string]any {
	return map[string]any{
		"money":    func(amount, currency string) string { return Money(locale, amount, currency) },
		"date":     func(zone *time.Location, t any) string { return formatTime(locale, zone, t, false) },
		"datetime": func(zone *time.Location, t any) string { return formatTime(locale, zone, t, true) },
	}
}

func textFuncs(locale string) texttemplate.FuncMap { return funcs(locale) }
func htmlFuncs(locale string) htmltemplate.FuncMap { return funcs(locale) }

// zeroDecimals are the currencies with no minor unit (the ones the service bills in, and the usual others).
var zeroDecimals = map[string]bool{"KRW": true, "JPY": true, "VND": true, "CLP": true, "ISK": true}

// Money shows an amount: "9,900원" in Korean, "₩9,900" in English for KRW; "12.50 USD" / "$12.50" style
// for others (the currency code where no symbol is known).
func Money(locale, amount, currency string) string {
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return amount + " " + currency
	}
	places := int32(2)
	if zeroDecimals[currency] {
		places = 0
	}
	s := group(d.StringFixed(places))
	if locale == "ko" {
		if currency == "KRW" {
			return s + "원"
		}
		return s + " " + currency
	}
	if sym, ok := map[string]string{"KRW": "₩", "USD": "$", "EUR": "€", "JPY": "¥", "GBP": "£"}[currency]; ok {
		if strings.HasPrefix(s, "-") {
			return "-" + sym + s[1:]
		}
		return sym + s
	}
	return s + " " + currency
}

// group puts thousands separators into a fixed-point number.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

var koWeekdays = [...]string{"일", "월", "화", "수", "목", "금", "토"}

// formatTime shows a time (time.Time or *time.Time; nil shows "") in the zone: "2027년 2월 3일 (수)" or
// "Wednesday, February 3, 2027", with the hour when withTime.
func formatTime(locale string, zone *time.Location, v any, withTime bool) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return ""
		}
		t = *x
	default:
		return fmt.Sprint(v)
	}
	if zone == nil {
		zone = seoul
	}
	t = t.In(zone)
	zname, _ := t.Zone()
	if locale == "ko" {
		s := fmt.Sprintf("%d년 %d월 %d일 (%s)", t.Year(), int(t.Month()), t.Day(), koWeekdays[t.Weekday()])
		if withTime {
			s += t.Format(" 15:04 ") + zname
		}
		return s
	}
	if withTime {
		return t.Format("Monday, January 2, 2006 at 15:04 ") + zname
	}
	return t.Format("Monday, January 2, 2006")
}

// SampleData is a plausible email of a kind, for checking templates (and for people designing them).
func SampleData(locale string, k Kind) Data {
	at := time.Date(2027, 2, 3, 1, 0, 0, 0, time.UTC)
	later, end := at.Add(72*time.Hour), at.Add(15*24*time.Hour)
	d := Data{Kind: k, Locale: locale, Merchant: "Dunning Works", Customer: CustomerData{Name: "Kim Minji", Email: "minji@example.com", Zone: seoul},
		Link: "http://127.0.0.1:8080/c/sample-token",
		Invoice: &InvoiceData{ID: "inv_sample", Number: "INV-000001", Currency: "KRW", Total: "9900", AmountDue: "9900", AmountPaid: "0",
			PeriodStart: at, PeriodEnd: at.AddDate(0, 1, 0), Lines: []LineData{{Description: "Pro plan", Amount: "9900"}}},
		Subscription: &SubscriptionData{ID: "sub_sample", Status: "past_due", Plan: "Pro", Quantity: 1, Amount: "9900", Currency: "KRW",
			PeriodEnd: at.AddDate(0, 1, 0), NextRenewalAt: &later},
		DeclineCode: "insufficient_funds", NextRetryAt: &later, GraceEndsAt: &later, DunningEndsAt: &end,
		PreviousPlan: "Basic", PreviousQuantity: 1, RenewsAt: &later,
		Renewal: &RenewalData{Plan: "Pro", Quantity: 1, Currency: "KRW", Amount: "9900", Tax: "900", CreditApplied: "0", AmountDue: "9900", HasTax: true}}
	if k == PaymentSucceeded {
		d.Invoice.AmountDue, d.Invoice.AmountPaid, d.Invoice.PaidAt, d.Receipt = "0", "9900", &at, true
		d.Payment = &PaymentData{Card: "VISA •••• 4242"}
	}
	return d
}
