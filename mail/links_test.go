package mail_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/devtools/mailcatcher"
	"github.com/dunningworks/billing/mail"
)

// A fresh link asked for on the expired page goes to the address on file, masked on the page, with a
// link signed when the email is written; asking again at once (even five times at once) sends nothing
// more, so the button cannot flood an inbox.
func TestRequestLinkSendsOneFreshLinkAndIsRateLimited(t *testing.T) {
	t.Parallel()
	b := setupMail(t, testenv.Options{})
	env := b.env
	cus := env.CreateCustomer()
	ctx := t.Context()

	var wg sync.WaitGroup
	results := make([]error, 5)
	masked := make([]string, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			masked[i], results[i] = env.App.Mail.RequestLink(ctx, cus, env.Now())
		}()
	}
	wg.Wait()
	sent := 0
	for i, err := range results {
		if err == nil {
			sent++
			require.Regexp(t, `^c\*\*\*@example\.com$`, masked[i])
			continue
		}
		require.ErrorIs(t, err, mail.ErrLinkRateLimited)
	}
	require.Equal(t, 1, sent, "one fresh link for five requests at once")
	_, err := env.App.Mail.RequestLink(ctx, cus, env.Now())
	require.ErrorIs(t, err, mail.ErrLinkRateLimited)
	require.Equal(t, 1, env.QueryInt(`SELECT count(*) FROM mail_outbox WHERE kind = 'portal_link' AND customer_id = $1`, cus))

	b.waitSettled(t)
	require.True(t, b.catcher.Wait(1, 10*time.Second))
	var got *mailcatcher.Message
	for _, m := range b.catcher.Messages() {
		if h, err := m.Header(); err == nil && h.Get("X-Billing-Email-Kind") == string(mail.PortalLink) {
			got = &m
		}
	}
	require.NotNil(t, got, "the fresh link email arrived")
	require.True(t, strings.HasSuffix(got.To[0], "@example.com"))
	text, html := mailcatcher.Parts(got.Raw)
	require.Contains(t, text, "http://127.0.0.1:8080/c/test-"+cus)
	require.Contains(t, html, "http://127.0.0.1:8080/c/test-"+cus)
	require.Contains(t, got.Subject, "새 링크")
}

func TestMaskAddress(t *testing.T) {
	t.Parallel()
	require.Equal(t, "k***@example.com", mail.MaskAddress("kim@example.com"))
	require.Equal(t, "김***@example.com", mail.MaskAddress("김민수@example.com"))
	require.Equal(t, "***", mail.MaskAddress("nobody"))
}
