package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every kind renders in Korean and English, as text and HTML, with its facts in both parts.
func TestEveryKindRendersInBothLocales(t *testing.T) {
	t.Parallel()
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	// What each kind must say, per locale, in the subject or the body.
	want := map[Kind]map[string][]string{
		PaymentFailedSoft:     {"ko": {"결제가 실패했습니다", "9,900원", "insufficient_funds", "2027년 2월 6일 (토)"}, "en": {"payment failed", "₩9,900", "insufficient_funds", "Saturday, February 6, 2027"}},
		PaymentFailedHard:     {"ko": {"새 카드를 등록", "9,900원"}, "en": {"add a new card", "₩9,900"}},
		PaymentSucceeded:      {"ko": {"영수증", "9,900원", "INV-000001", "PDF"}, "en": {"receipt", "₩9,900", "INV-000001", "PDF"}},
		SubscriptionPastDue:   {"ko": {"연체", "Pro", "2027년 2월 6일"}, "en": {"past due", "Pro", "February 6, 2027"}},
		SubscriptionSuspended: {"ko": {"중지", "Pro"}, "en": {"suspended", "Pro"}},
		SubscriptionCanceled:  {"ko": {"해지", "Pro"}, "en": {"canceled", "Pro"}},
		PlanChanged:           {"ko": {"변경", "Basic", "Pro", "9,900원"}, "en": {"changed", "Basic", "Pro", "₩9,900"}},
		RenewalUpcoming:       {"ko": {"갱신", "9,900원", "2027년 2월 6일"}, "en": {"renews", "₩9,900", "February 6, 2027"}},
		PortalLink:            {"ko": {"새 링크"}, "en": {"new link"}},
	}
	require.Len(t, want, len(Kinds), "every kind has expectations")
	for _, k := range Kinds {
		for _, loc := range Locales {
			r, err := tpl.Render(loc, k, SampleData(loc, k))
			require.NoError(t, err, "%s/%s", loc, k)
			require.NotEmpty(t, r.Subject, "%s/%s", loc, k)
			require.NotContains(t, r.Subject, "\n")
			require.Contains(t, r.HTML, "<html lang=\""+loc+"\"", "%s/%s", loc, k)
			require.Contains(t, r.HTML, "http://127.0.0.1:8080/c/sample-token", "the HTML links to the customer page")
			require.Contains(t, r.Text, "http://127.0.0.1:8080/c/sample-token", "the text part links to the customer page")
			require.NotContains(t, r.Text, "<p>", "the text part is plain text")
			require.NotContains(t, r.Text+r.HTML, "<no value>")
			for _, s := range want[k][loc] {
				all := r.Subject + "\n" + r.Text
				require.Contains(t, all, s, "%s/%s text", loc, k)
				require.Contains(t, r.Subject+"\n"+r.HTML, s, "%s/%s HTML", loc, k)
			}
		}
	}
}

// Hangul and escaping: a customer's name is HTML-escaped in the HTML part and left as is in the text part.
func TestCustomerNameIsEscapedInHTMLOnly(t *testing.T) {
	t.Parallel()
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	d := SampleData("ko", PaymentFailedHard)
	d.Customer.Name = `김<b>민지</b>`
	r, err := tpl.Render("ko", PaymentFailedHard, d)
	require.NoError(t, err)
	require.Contains(t, r.Text, `김<b>민지</b>님`)
	require.Contains(t, r.HTML, `김&lt;b&gt;민지&lt;/b&gt;님`)
}

// Without a link (no customer page wired), emails still render, with no button and no dangling text.
func TestRendersWithoutLink(t *testing.T) {
	t.Parallel()
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	for _, k := range Kinds {
		d := SampleData("en", k)
		d.Link = ""
		r, err := tpl.Render("en", k, d)
		require.NoError(t, err)
		require.NotContains(t, r.HTML, "href=")
		require.NotContains(t, r.Text, "http")
	}
}

// A merchant's directory overrides one template and leaves the others built in; a broken override
// refuses to load, naming the file.
func TestTemplateOverrides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "en"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "en", "payment_failed_soft.txt"),
		[]byte(`{{define "subject"}}Shop: card declined{{end}}Dear {{.Customer.Name}}, {{money .Invoice.AmountDue .Invoice.Currency}} did not go through.`), 0o644))
	tpl, err := LoadTemplates(dir)
	require.NoError(t, err)
	r, err := tpl.Render("en", PaymentFailedSoft, SampleData("en", PaymentFailedSoft))
	require.NoError(t, err)
	require.Equal(t, "Shop: card declined", r.Subject)
	require.Equal(t, "Dear Kim Minji, ₩9,900 did not go through.\n", r.Text)
	require.Contains(t, r.HTML, "declined by your card issuer", "the HTML part is still the built-in one")
	ko, err := tpl.Render("ko", PaymentFailedSoft, SampleData("ko", PaymentFailedSoft))
	require.NoError(t, err)
	require.Contains(t, ko.Subject, "결제가 실패했습니다", "the Korean template is untouched")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "en", "plan_changed.html"), []byte(`{{define "body"}}{{.NoSuchField}}{{end}}`), 0o644))
	_, err = LoadTemplates(dir)
	require.ErrorContains(t, err, "en/plan_changed.html")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "en", "plan_changed.html"), []byte(`{{define "body"}}{{end}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "en", "plan_changed.txt"), []byte(`no subject`), 0o644))
	_, err = LoadTemplates(dir)
	require.ErrorContains(t, err, `defines no "subject"`)
}

func TestParseKinds(t *testing.T) {
	t.Parallel()
	all, err := ParseKinds("")
	require.NoError(t, err)
	require.Len(t, all, len(Kinds))
	some, err := ParseKinds("payment_failed_soft, payment_failed_hard")
	require.NoError(t, err)
	require.Equal(t, map[Kind]bool{PaymentFailedSoft: true, PaymentFailedHard: true}, some)
	most, err := ParseKinds("-subscription_past_due")
	require.NoError(t, err)
	require.Len(t, most, len(Kinds)-1)
	require.False(t, most[SubscriptionPastDue])
	_, err = ParseKinds("payment_faild")
	require.ErrorContains(t, err, `unknown kind "payment_faild"`)
}

func TestMoney(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ locale, amount, currency, want string }{
		{"ko", "1234567", "KRW", "1,234,567원"},
		{"en", "1234567", "KRW", "₩1,234,567"},
		{"en", "1234.5", "USD", "$1,234.50"},
		{"ko", "12.5", "USD", "12.50 USD"},
		{"en", "-990", "KRW", "-₩990"},
		{"en", "100", "CHF", "100.00 CHF"},
	} {
		require.Equal(t, c.want, Money(c.locale, c.amount, c.currency), "%+v", c)
	}
	require.True(t, strings.HasSuffix(Money("ko", "0", "KRW"), "0원"))
}

// The receipt names the card charged; when it was the backup card it says plainly that the default card
// was declined (naming it) and the backup was charged, with the way to change card.
func TestReceiptNamesTheCardCharged(t *testing.T) {
	t.Parallel()
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	want := map[string]struct{ normal, backup, noDefault []string }{
		"en": {
			normal:    []string{"Charged to: VISA •••• 4242\n"},
			backup:    []string{"Your default card, 신한 •••• 123•, was declined, so we charged your backup card, VISA •••• 4242.", "To change the card you pay with: http://127.0.0.1:8080/c/sample-token", "Charged to: VISA •••• 4242 (your backup card)"},
			noDefault: []string{"Your default card could not be charged, so we charged your backup card, VISA •••• 4242."},
		},
		"ko": {
			normal:    []string{"결제 카드: VISA •••• 4242\n"},
			backup:    []string{"기본 카드(신한 •••• 123•)가 거절되어 예비 카드(VISA •••• 4242)로 결제했습니다.", "결제 카드 변경하기: http://127.0.0.1:8080/c/sample-token", "결제 카드: VISA •••• 4242 (예비 카드)"},
			noDefault: []string{"기본 카드로 결제할 수 없어 예비 카드(VISA •••• 4242)로 결제했습니다."},
		},
	}
	htmlWant := map[string][]string{
		"en": {"Your default card, <b>신한 •••• 123•</b>, was declined, so we charged your <b>backup card, VISA •••• 4242</b>.", `<a href="http://127.0.0.1:8080/c/sample-token">Change the card you pay with</a>`, "<td>Charged to</td><td align=\"right\">VISA •••• 4242 (your backup card)</td>"},
		"ko": {"기본 카드(<b>신한 •••• 123•</b>)가 거절되어 <b>예비 카드(VISA •••• 4242)</b>로 결제했습니다.", `<a href="http://127.0.0.1:8080/c/sample-token">결제 카드 변경하기</a>`, "<td>결제 카드</td><td align=\"right\">VISA •••• 4242 (예비 카드)</td>"},
	}
	for _, loc := range Locales {
		d := SampleData(loc, PaymentSucceeded)
		r, err := tpl.Render(loc, PaymentSucceeded, d)
		require.NoError(t, err)
		for _, s := range want[loc].normal {
			require.Contains(t, r.Text, s, loc)
		}
		require.NotContains(t, r.Text+r.HTML, "예비", "a default-card receipt says nothing of a backup")
		require.NotContains(t, r.Text+r.HTML, "backup", "a default-card receipt says nothing of a backup")

		d.Payment = &PaymentData{Card: "VISA •••• 4242", Backup: true, DeclinedCard: "신한 •••• 123•"}
		r, err = tpl.Render(loc, PaymentSucceeded, d)
		require.NoError(t, err)
		for _, s := range want[loc].backup {
			require.Contains(t, r.Text, s, "%s text:\n%s", loc, r.Text)
		}
		for _, s := range htmlWant[loc] {
			require.Contains(t, r.HTML, s, "%s HTML:\n%s", loc, r.HTML)
		}

		d.Payment.DeclinedCard = ""
		r, err = tpl.Render(loc, PaymentSucceeded, d)
		require.NoError(t, err)
		for _, s := range want[loc].noDefault {
			require.Contains(t, r.Text, s, "%s text:\n%s", loc, r.Text)
		}

		d.Payment = nil // credit or an offline payment: no card to name
		r, err = tpl.Render(loc, PaymentSucceeded, d)
		require.NoError(t, err)
		require.NotContains(t, r.Text, "•", loc)
	}
}

// A payment-failed email whose invoice goes to the backup card next says which card and when, in both
// kinds and locales, instead of a retry of the same card or "add a new card".
func TestPaymentFailedNamesTheBackupCardTriedNext(t *testing.T) {
	t.Parallel()
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	at := time.Date(2027, 2, 8, 0, 0, 0, 0, time.UTC) // 09:00 KST
	want := map[string]map[Kind][]string{
		"en": {
			PaymentFailedSoft: {"We will charge your backup card, VISA •••• 4242, on ", "09:00", "we will charge your backup card on"},
			PaymentFailedHard: {"We will not try that card again. We will charge your backup card, VISA •••• 4242, on ", "09:00", "Your card was declined — we will charge your backup card"},
		},
		"ko": {
			PaymentFailedSoft: {"에 예비 카드(VISA •••• 4242)로 결제합니다. 다른 카드로 결제하시려면 그 전에 카드를 변경해 주세요.", "09:00", "예비 카드로 결제합니다"},
			PaymentFailedHard: {"같은 카드로는 다시 시도하지 않습니다. ", "에 예비 카드(VISA •••• 4242)로 결제합니다.", "09:00"},
		},
	}
	for _, loc := range Locales {
		for _, kind := range []Kind{PaymentFailedSoft, PaymentFailedHard} {
			d := SampleData(loc, kind)
			r, err := tpl.Render(loc, kind, d)
			require.NoError(t, err)
			require.NotContains(t, r.Subject+r.Text+r.HTML, "4242", "%s %s without a backup names no backup card", loc, kind)

			d.Backup, d.NextRetryAt = &BackupData{Card: "VISA •••• 4242", At: at}, nil
			r, err = tpl.Render(loc, kind, d)
			require.NoError(t, err)
			for _, s := range want[loc][kind] {
				require.Contains(t, r.Subject+"\n"+r.Text, s, "%s %s:\n%s\n%s", loc, kind, r.Subject, r.Text)
			}
			require.Contains(t, r.HTML, "<b>VISA •••• 4242</b>", "%s %s HTML", loc, kind)
			require.NotContains(t, r.Text, "please add a new card;", "%s %s", loc, kind)
			require.NotContains(t, r.Text, "새 카드를 등록해 주세요. 등록하시면 바로 결제합니다", "%s %s", loc, kind)
		}
	}
}
