package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/devtools/mailcatcher"
	"github.com/dunningworks/billing/mail"
)

// mailPage is a billingd whose emails go to an in-process catcher and whose links (BILLING_PUBLIC_URL)
// point at itself.
type mailPage struct {
	env     *testenv.Env
	catcher *mailcatcher.Catcher
	client  *http.Client
}

func setupMailPage(t *testing.T) mailPage {
	t.Helper()
	c, err := mailcatcher.Start(mailcatcher.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	env := testenv.New(t, testenv.Options{PublicURL: true,
		Env: map[string]string{"BILLING_SMTP_URL": c.URL(), "BILLING_MAIL_FROM": "DunningWorks <billing@shop.example>", "BILLING_MERCHANT_NAME": "DunningWorks"},
		App: testenvMailTuning()})
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return mailPage{env: env, catcher: c, client: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// emailsOf are the caught emails of one kind, oldest first.
func (m mailPage) emailsOf(kind mail.Kind) []mailcatcher.Message {
	var out []mailcatcher.Message
	for _, msg := range m.catcher.Messages() {
		if h, err := msg.Header(); err == nil && h.Get("X-Billing-Email-Kind") == string(kind) {
			out = append(out, msg)
		}
	}
	return out
}

// waitEmail waits for the n-th email of a kind.
func (m mailPage) waitEmail(t *testing.T, kind mail.Kind, n int) mailcatcher.Message {
	t.Helper()
	require.Eventually(t, func() bool { return len(m.emailsOf(kind)) >= n }, 60*time.Second, 50*time.Millisecond, "no %s email", kind)
	return m.emailsOf(kind)[n-1]
}

var pageLink = regexp.MustCompile(`https?://[^\s"<>]+/c/[A-Za-z0-9_.-]+`)

// linkIn is the customer-page link an email carries.
func linkIn(t *testing.T, msg mailcatcher.Message) string {
	t.Helper()
	text, _ := mailcatcher.Parts(msg.Raw)
	l := pageLink.FindString(text)
	require.NotEmpty(t, l, "the email links to the customer page:\n%s", text)
	return l
}

// An expired link offers a fresh one by email: the button (CSRF-protected) queues one email to the
// address on file, whose link opens the page; pressing again at once is refused with 429 and sends
// nothing; a link we did not sign cannot ask.
func TestExpiredLinkOffersAFreshOneByEmail(t *testing.T) {
	t.Parallel()
	m := setupMailPage(t)
	cus := m.env.CreateCustomer()
	link, err := m.env.App.Links.CustomerPage(t.Context(), cus)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(link, m.env.URL+"/c/"), link)

	m.env.Advance("721h")
	res, err := m.client.Get(link)
	require.NoError(t, err)
	body := readAll(t, res)
	require.Equal(t, http.StatusGone, res.StatusCode)
	require.Contains(t, body, "This link has expired")
	require.Contains(t, body, `id="fresh-link"`)
	csrf := csrfField.FindStringSubmatch(body)
	require.NotNil(t, csrf)

	res, err = m.client.PostForm(link+"/link", url.Values{})
	require.NoError(t, err)
	readAll(t, res)
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	res, err = m.client.PostForm(link+"/link", url.Values{"csrf": {csrf[1]}})
	require.NoError(t, err)
	body = readAll(t, res)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Contains(t, body, "We emailed a new link to c***@example.com")

	res, err = m.client.PostForm(link+"/link", url.Values{"csrf": {csrf[1]}})
	require.NoError(t, err)
	body = readAll(t, res)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, body)
	require.Contains(t, body, "sent you a new link a short while ago")

	fresh := linkIn(t, m.waitEmail(t, mail.PortalLink, 1))
	require.NotEqual(t, link, fresh)
	res, err = m.client.Get(fresh)
	require.NoError(t, err)
	body = readAll(t, res)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Contains(t, body, "Your subscription")
	require.Len(t, m.emailsOf(mail.PortalLink), 1, "one email for two presses")

	// A token we did not sign cannot ask for anything.
	res, err = m.client.PostForm(m.env.URL+"/c/AQE.bm90LW91cnM/link", url.Values{"csrf": {csrf[1]}})
	require.NoError(t, err)
	readAll(t, res)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

// testenvMailTuning sends emails quickly (the dispatcher's interval) and retries fast.
func testenvMailTuning() app.Options {
	return app.Options{Mail: mail.Tuning{Interval: 20 * time.Millisecond, BackoffBase: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Timeout: 10 * time.Second, Lease: 30 * time.Second, MaxAttempts: 5}}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}
