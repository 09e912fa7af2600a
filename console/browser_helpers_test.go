package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// One headless Chromium serves the whole package; each test gets its own browser context (its own
// cookie jar), so parallel tests never share a session.
var shared struct {
	once    sync.Once
	root    context.Context
	stop    func()
	dataDir string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	if shared.dataDir != "" {
		_ = os.RemoveAll(shared.dataDir)
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
	return "", fmt.Errorf("headless Chromium is required for the console's browser tests and %s was not found: "+
		"install Debian's package (apt-get install -y chromium; `make test` does it when run as root) or set CHROMIUM_PATH",
		strings.Join(names, " or "))
}

func startBrowser() {
	path, err := chromiumPath()
	if err != nil {
		shared.err = err
		return
	}
	if shared.dataDir, err = os.MkdirTemp("", "console-chromium-"); err != nil {
		shared.err = err
		return
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(shared.dataDir),
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
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	// The first run starts the browser, which lives as long as this context: no timeout on it.
	if err := chromedp.Do(root); err != nil {
		cancelRoot()
		cancelAlloc()
		shared.err = fmt.Errorf("start chromium at %s: %w", path, err)
		return
	}
	shared.root = root
	shared.stop = func() { cancelRoot(); cancelAlloc() }
}

// tab opens a tab in a fresh browser context for t; it closes when t ends.
func tab(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(startBrowser)
	require.NoError(t, shared.err)
	ctx, cancel := chromedp.NewContext(shared.root, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)))
	return ctx
}

// signIn fills the console's sign-in form with token and waits for the overview.
func signIn(t *testing.T, ctx context.Context, env *testenv.Env, token string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/console/delinquent"), // any page: without a session it is the sign-in form
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#sign-in`)),
		chromedp.WaitVisible(chromedp.CSS(`#states`)),
	))
}

// text returns the visible text of the first node matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err)
	return s
}

// listedCustomers returns the customer ids in the delinquent table, in order.
func listedCustomers(t *testing.T, ctx context.Context) []string {
	t.Helper()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#delinquent tbody tr[data-customer]')).map(r => r.dataset.customer)`))
	require.NoError(t, err)
	return ids
}

// screenshot saves the page as docs/screenshots/<name>.png when UPDATE_SCREENSHOTS=1, else in a temporary
// folder, so a plain test run never changes the working tree.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(png), "\x89PNG"), "a PNG")
	dir := filepath.Join(os.TempDir(), "billing-console-screenshots")
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "docs", "screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// client is a plain HTTP client that keeps cookies and does not follow redirects, for the tests that
// need to see status codes and forge requests a browser would not send.
func client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// waitLocation waits until the tab's address contains want (a form submitted, its answer loaded).
func waitLocation(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		l, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.Contains(l, want)
	}, 10*time.Second, 20*time.Millisecond, "the address never contained %q", want)
}
