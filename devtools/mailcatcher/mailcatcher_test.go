package mailcatcher_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/devtools/mailcatcher"
)

const message = "From: Shop <billing@shop.example>\r\nTo: kim@example.com\r\nSubject: =?UTF-8?q?=EA=B2=B0=EC=A0=9C_failed?=\r\n" +
	"Message-ID: <m-1@shop.example>\r\nX-Billing-Email-Kind: payment_failed_soft\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
	"--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n" +
	"--alt\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
	"Your page: http://127.0.0.1:8080/c/AQHalbXcBmN1c19weXI0cjV4NGZzbTN2ZnJiM=\r\nGI2dA.LAwV\r\n" +
	"--alt\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p><a href=\"http://127.0.0.1:8080/c/x\">page</a></p>\r\n--alt--\r\n" +
	"--outer\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"receipt-INV-1.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--outer--\r\n"

// What a person and a script see of a caught message: messages.json decodes the text part (a
// quoted-printable link whole again), names the billing kind and the attachments; the message page shows
// the HTML part in a sandboxed frame whose links open outside it.
func TestCaughtMessagesAreListedForPeopleAndScripts(t *testing.T) {
	t.Parallel()
	c, err := mailcatcher.Start(mailcatcher.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, smtp.SendMail(c.Addr, nil, "billing@shop.example", []string{"kim@example.com"}, []byte(message)))
	require.True(t, c.Wait(1, 10*time.Second))
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)

	res, err := http.Get(srv.URL + "/messages.json")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	var list []struct {
		Seq         int      `json:"seq"`
		To          []string `json:"to"`
		Subject     string   `json:"subject"`
		Kind        string   `json:"kind"`
		MessageID   string   `json:"message_id"`
		File        string   `json:"file"`
		Text        string   `json:"text"`
		Attachments []string `json:"attachments"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	require.Len(t, list, 1)
	m := list[0]
	require.Equal(t, 1, m.Seq)
	require.Equal(t, []string{"kim@example.com"}, m.To)
	require.Equal(t, "결제 failed", m.Subject)
	require.Equal(t, "payment_failed_soft", m.Kind)
	require.Equal(t, "<m-1@shop.example>", m.MessageID)
	require.True(t, strings.HasSuffix(m.File, "-0001.eml"), m.File)
	require.Contains(t, m.Text, "http://127.0.0.1:8080/c/AQHalbXcBmN1c19weXI0cjV4NGZzbTN2ZnJiMGI2dA.LAwV")
	require.Equal(t, []string{"receipt-INV-1.pdf"}, m.Attachments)

	res, err = http.Get(srv.URL + "/m/1")
	require.NoError(t, err)
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(page), `<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="&lt;base target=&#34;_blank&#34;&gt;&lt;p&gt;&lt;a href=`)
}
