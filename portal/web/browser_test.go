package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/devtools/mailcatcher"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/internal/testdb"
	"github.com/dunningworks/billing/mail"
)

// The customer's side of the dunning loop, in a real browser (headless Chromium, as the console's tests
// run it): the payment-failed email, the signed link, pgsim's card registration page, the way back, the
// receipt email and its PDF. UPDATE_SCREENSHOTS=1 writes the pictures in docs/screenshots/.

// One headless Chromium serves the package's browser tests; each test gets its own browser context (its
// own cookies).
var browser struct {
	once    sync.Once
	root    context.Context
	stop    func()
	dataDir string
	err     error
}

// TestMain drops the tests' databases in the background (testdb.Main) and stops the package's Chromium.
func TestMain(m *testing.M) {
	code := testdb.Main(m)
	browser.once.Do(func() {}) // waits for a start a test set going
	if browser.stop != nil {
		browser.stop()
	}
	if browser.dataDir != "" {
		_ = os.RemoveAll(browser.dataDir)
	}
	os.Exit(code)
}

// chromiumPath finds Debian's chromium (CHROMIUM_PATH overrides).
func chromiumPath() (string, error) {
	names := []string{"chromium", "chromium-browser"}
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		names = []string{p}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("headless Chromium is required for the customer page's browser tests and %s was not found: "+
		"install Debian's package (apt-get install -y chromium; `make test` does it when run as root) or set CHROMIUM_PATH",
		strings.Join(names, " or "))
}

func startBrowser() {
	path, err := chromiumPath()
	if err != nil {
		browser.err = err
		return
	}
	if browser.dataDir, err = os.MkdirTemp("", "portal-chromium-"); err != nil {
		browser.err = err
		return
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(browser.dataDir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1024, 900),
	)
	root, cancelRoot := chromedp.NewContext(alloc)
	// The first run starts the browser, which lives as long as this context: no timeout on it.
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		browser.err = fmt.Errorf("start chromium at %s: %w", path, err)
		return
	}
	browser.root = root
	browser.stop = func() { cancelRoot(); cancelAlloc() }
}

// tab opens a tab in a fresh browser context for t; it closes when t ends. The timeout bounds the whole
// test's use of the browser: only a failing test ever reaches it.
func tab(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(startBrowser)
	require.NoError(t, browser.err)
	ctx, cancel := chromedp.NewContext(browser.root, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1024, 900)))
	return ctx
}

// screenshot saves the page as docs/screenshots/<name>.png when UPDATE_SCREENSHOTS=1, else in a temporary
// folder, so a plain test run never changes the working tree.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(png), "\x89PNG"), "a PNG")
	dir := filepath.Join(os.TempDir(), "billing-portal-screenshots")
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// text is the visible text of the first node matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err)
	return s
}

// location is the tab's address.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	l, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	return l
}

// navigate opens u and returns the HTTP status the page came with.
func navigate(t *testing.T, ctx context.Context, u string) int {
	t.Helper()
	res, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
	require.NoError(t, err)
	require.NotNil(t, res, "no response for %s", u)
	return int(res.Status)
}

// inbox serves caught emails' HTML parts to the browser, as a mail client shows them: GET /{seq}.
func inbox(t *testing.T, c *mailcatcher.Catcher) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range c.Messages() {
			if r.URL.Path == fmt.Sprintf("/%d", m.Seq) {
				_, html := mailcatcher.Parts(m.Raw)
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte(html))
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// pdfOf is the PDF a message carries as an attachment, and its file name.
func pdfOf(t *testing.T, msg mailcatcher.Message) (string, []byte) {
	t.Helper()
	for _, p := range mailcatcher.Leaves(msg.Raw) {
		if p.ContentType == "application/pdf" {
			return p.Filename, p.Body
		}
	}
	require.Fail(t, "the email has no PDF attachment")
	return "", nil
}

// pdfText turns a PDF into text with pdftotext (poppler-utils), as a reader shows it.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "receipt.pdf")
	require.NoError(t, os.WriteFile(in, pdf, 0o600))
	out, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", in, "-").CombinedOutput()
	require.NoError(t, err, "pdftotext (poppler-utils) must be installed (make browser): %s", out)
	return string(out)
}

// The whole loop as the customer lives it. A monthly subscription's renewal is declined (insufficient
// funds); the payment-failed email arrives at the SMTP catcher; the customer opens it and clicks its link
// to their page, presses "change card", types a good test card on pgsim's registration page, and comes
// back through the success URL to their page, which says the card was changed and the invoice paid. The
// API agrees (paid, one successful charge at pgsim), and the receipt email arrives with a PDF whose text
// has the amount, the invoice number and the new card.
func TestCustomerRecoversInTheBrowser(t *testing.T) {
	t.Parallel()
	go browser.once.Do(startBrowser) // Chromium starts while billingd does (tab waits for it)
	m := setupMailPage(t)
	env := m.env
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "loop-1", "email": "kim@example.com", "name": "김민수"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cus := res.JSON(t)["id"].(string)
	env.AddKey(cus, pgsim.BehaviorOK)
	res = env.Subscribe(cus, plan)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)

	// The card runs out of money; the clock passes the renewal, which is declined.
	require.NoError(t, env.Sim().SetCustomerBehavior("ck-"+cus, pgsim.BehaviorInsufficient))
	env.AdvanceToRenewal(sub, 10*time.Hour)
	require.Equal(t, "past_due", env.Subscription(sub)["status"])
	res = env.Do("GET", "/v1/invoices?status=open&subscription_id="+sub, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var open struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	res.Decode(t, &open)
	require.Len(t, open.Data, 1)
	inv := open.Data[0].ID

	// The payment-failed email, its link to the customer's page (BILLING_PUBLIC_URL is this billingd).
	failed := m.waitEmail(t, mail.PaymentFailedSoft, 1)
	require.Equal(t, []string{"kim@example.com"}, failed.To)
	link := linkIn(t, failed)
	require.True(t, strings.HasPrefix(link, env.URL+"/c/"), link)
	_, html := mailcatcher.Parts(failed.Raw)
	require.Contains(t, html, `href="`+link+`"`, "the HTML part links to the same page")

	ctx := tab(t)
	mails := inbox(t, m.catcher)
	require.Equal(t, 200, navigate(t, ctx, fmt.Sprintf("%s/%d", mails.URL, failed.Seq)))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`a[href*="/c/"]`))))
	require.Contains(t, text(t, ctx, `body`), "9,900원")
	screenshot(t, ctx, "email-payment-failed")

	// The customer clicks the email's button: their page, the open invoice, the change-card button.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href*="/c/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#open-`+inv)),
		chromedp.WaitVisible(chromedp.CSS(`#change-card`)),
	))
	require.Equal(t, link, location(t, ctx))
	require.Contains(t, text(t, ctx, `h1`), "김민수")
	require.Contains(t, text(t, ctx, `#open-`+inv), "9,900")
	require.Contains(t, text(t, ctx, `body`), "past_due")
	screenshot(t, ctx, "customer-page")

	// Change card: the page's script calls pgsim's SDK stand-in, which opens pgsim's registration page.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#change-card`)),
		chromedp.WaitVisible(chromedp.CSS(`#cardNumber`)),
	))
	require.True(t, strings.HasPrefix(location(t, ctx), env.App.SimURL+"/billing-auth?"), location(t, ctx))
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#cardNumber`), "4242 4242 4242 4242")))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#expiry`), "12/30"),
		chromedp.SendKeys(chromedp.CSS(`#birth`), "900101"),
	))
	screenshot(t, ctx, "pgsim-card-registration")

	// Register: pgsim redirects to our success URL with customerKey and authKey, which issues the key,
	// retries the open invoice at once and sends the browser back to the page with the outcome.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#register`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	))
	back := location(t, ctx)
	require.Regexp(t, `^`+regexp.QuoteMeta(link)+`\?done=card_(paid|pending)$`, back)
	if strings.HasSuffix(back, "card_pending") {
		// A loaded machine outlasted the success URL's wait for the retry: the page says the new card is
		// being charged, and the customer reloads until the invoice shows as paid.
		require.Contains(t, text(t, ctx, `#flash`), "we are charging it now")
		require.Eventually(t, func() bool {
			res, err := chromedp.RunResponse(ctx, chromedp.Navigate(link))
			if err != nil || res == nil || res.Status != 200 {
				return false
			}
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#paid-`+inv+`").length`))
			return err == nil && n == 1
		}, 60*time.Second, 200*time.Millisecond)
	} else {
		require.Contains(t, text(t, ctx, `#flash`), "Your card was changed and the open invoice was paid")
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#paid-`+inv))))
	require.Empty(t, nodes(t, ctx, `#open-`+inv))
	require.Contains(t, text(t, ctx, `#card`), "424242*******242", "the new card is shown")
	screenshot(t, ctx, "customer-page-card-changed")

	// The API: the invoice is paid, by one successful attempt and one charge at pgsim.
	res = env.Do("GET", "/v1/invoices/"+inv, testenv.ServiceToken, nil)
	require.Equal(t, 200, res.Status, string(res.Body))
	var got struct {
		Status     string `json:"status"`
		Number     string `json:"number"`
		AmountPaid string `json:"amount_paid"`
		Attempts   []struct {
			Status  string `json:"status"`
			OrderID string `json:"order_id"`
		} `json:"attempts"`
	}
	res.Decode(t, &got)
	require.Equal(t, "paid", got.Status)
	require.Equal(t, "9900", got.AmountPaid)
	var succeeded []string
	for _, a := range got.Attempts {
		if a.Status == "succeeded" {
			succeeded = append(succeeded, a.OrderID)
		}
	}
	require.Len(t, succeeded, 1, "one successful attempt: %+v", got.Attempts)
	var charges []pgsim.Charge
	for _, c := range env.Sim().Charges() {
		if strings.HasPrefix(c.OrderID, inv+"-") {
			charges = append(charges, c)
		}
	}
	require.Len(t, charges, 1, "one charge at pgsim for the invoice")
	require.Equal(t, succeeded[0], charges[0].OrderID)
	require.Equal(t, "DONE", charges[0].Status)
	require.Equal(t, "9900", charges[0].Amount.String())

	// The receipt email, with the PDF; pdftotext reads the amount, the number and the new card in it.
	// The first month's receipt came too: this one names the renewal's invoice.
	var receipt mailcatcher.Message
	require.Eventually(t, func() bool {
		for _, msg := range m.emailsOf(mail.PaymentSucceeded) {
			if text, _ := mailcatcher.Parts(msg.Raw); strings.Contains(text, got.Number) {
				receipt = msg
				return true
			}
		}
		return false
	}, 60*time.Second, 50*time.Millisecond, "no receipt email for %s", got.Number)
	require.Len(t, m.emailsOf(mail.PaymentSucceeded), 2, "one receipt per paid invoice")
	rtext, _ := mailcatcher.Parts(receipt.Raw)
	require.Contains(t, rtext, got.Number)
	require.Contains(t, rtext, "9,900원")
	require.Regexp(t, `결제 카드: \S+ •••• •242\r?\n`, rtext, "the receipt names the card just registered")
	name, pdf := pdfOf(t, receipt)
	require.Equal(t, "receipt-"+strings.NewReplacer("/", "-", " ", "-").Replace(got.Number)+".pdf", name)
	ptext := pdfText(t, pdf)
	for _, want := range []string{"영수증 / Receipt", "김민수", "kim@example.com", got.Number, "KRW 9,900", "424242*******242", charges[0].OrderID} {
		require.Contains(t, ptext, want, "the receipt PDF's text:\n%s", ptext)
	}
	require.Regexp(t, `합계 / Total\s+KRW 9,900`, ptext)
	require.NotContains(t, ptext, "KRW 19,800", "one month's charge, once")
	require.Equal(t, 200, navigate(t, ctx, fmt.Sprintf("%s/%d", mails.URL, receipt.Seq)))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`a[href*="/c/"]`))))
	require.Contains(t, text(t, ctx, `body`), got.Number)
	screenshot(t, ctx, "email-receipt")

	require.Equal(t, "active", env.Subscription(sub)["status"])
	env.RequireBalanced()
}

// nodes are the nodes matching sel now (none is an answer, not a wait).
func nodes(t *testing.T, ctx context.Context, sel string) []string {
	t.Helper()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q)).map(n => n.id)`, sel)))
	require.NoError(t, err)
	return ids
}

// A link with one byte changed is refused and shows nothing of anyone; a link past its time says it has
// expired, shows nothing of the account, and offers a new link by email, which the customer asks for in
// the browser and which opens the page.
func TestTamperedAndExpiredLinksInTheBrowser(t *testing.T) {
	t.Parallel()
	go browser.once.Do(startBrowser)
	m := setupMailPage(t)
	env := m.env
	res := env.Do("POST", "/v1/customers", testenv.ServiceToken, map[string]any{"external_id": "loop-2", "email": "lee@example.com", "name": "이서연"})
	require.Equal(t, 201, res.Status, string(res.Body))
	cus := res.JSON(t)["id"].(string)
	link, err := env.App.Links.CustomerPage(t.Context(), cus)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(link, env.URL+"/c/"), link)
	ctx := tab(t)

	require.Equal(t, 200, navigate(t, ctx, link))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`h1`))))
	require.Contains(t, text(t, ctx, `h1`), "이서연")

	// One byte of the token changed (in the signed part: the customer id and expiry).
	i := strings.LastIndex(link, "/c/") + len("/c/") + 5
	b := []byte(link)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	tampered := string(b)
	require.NotEqual(t, link, tampered)
	require.Equal(t, http.StatusNotFound, navigate(t, ctx, tampered))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`h1`))))
	require.Contains(t, text(t, ctx, `body`), "This link is not valid")
	require.NotContains(t, text(t, ctx, `body`), "이서연")
	require.Empty(t, nodes(t, ctx, `#fresh-link`), "a link we did not sign cannot ask for a new one")

	// Thirty days and an hour later the link has expired.
	env.Advance("721h")
	require.Equal(t, http.StatusGone, navigate(t, ctx, link))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#fresh-link`))))
	body := text(t, ctx, `body`)
	require.Contains(t, body, "This link has expired")
	require.Contains(t, body, "Email me a new link")
	require.NotContains(t, body, "이서연")
	screenshot(t, ctx, "customer-page-expired")

	res2, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#fresh-link`)))
	require.NoError(t, err)
	require.NotNil(t, res2)
	require.Equal(t, int64(http.StatusOK), res2.Status)
	require.Contains(t, text(t, ctx, `body`), "We emailed a new link to l***@example.com")
	fresh := linkIn(t, m.waitEmail(t, mail.PortalLink, 1))
	require.Equal(t, []string{"lee@example.com"}, m.emailsOf(mail.PortalLink)[0].To)
	require.Equal(t, 200, navigate(t, ctx, fresh))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`h1`))))
	require.Contains(t, text(t, ctx, `h1`), "이서연")
}
