package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/portal"
)

// Change card through the gateway's own registration flow. The page hands the gateway's SDK the link's
// customerKey (portal.Signer.CustomerKey: the customer's alone), a successUrl and a failUrl under the same
// signed link. The gateway sends the customer back to
//
//	GET /c/{token}/card/success?gateway=<name>&customerKey=…&authKey=…   (exactly as Toss appends them)
//	GET /c/{token}/card/fail?gateway=<name>&code=…&message=…
//
// The success URL issues the billing key (billingkey.Vault.Issue, the API's new-card path), makes it the
// default (MakeDefault, which runs the same heal hook), so the open invoices are retried at once, waits a
// few seconds for that retry, and shows the page with the outcome. A customerKey other than the link's is
// refused before the gateway is asked anything: a forged redirect cannot attach a card to another
// customer, and an authKey made for another customerKey is refused by the gateway itself.

// cardSuccess takes the gateway's redirect after a registration.
func (h *Handler) cardSuccess(w http.ResponseWriter, r *http.Request) {
	l, ok := h.link(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	reg, ok := h.registrationNamed(q.Get("gateway"))
	if h.Vault == nil || !ok {
		h.message(w, http.StatusNotFound, "찾을 수 없습니다 / Not found", "이 링크로 카드를 등록할 수 없습니다. / Cards cannot be registered through this link.")
		return
	}
	want, err := h.Links.CustomerKey(l)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	customerKey, authKey := q.Get("customerKey"), q.Get("authKey")
	if subtle.ConstantTimeCompare([]byte(customerKey), []byte(want)) != 1 {
		h.Log.WarnContext(ctx, "portal: a card registration came back for another customerKey; nothing was issued",
			"customer_id", l.CustomerID, "gateway", reg.Gateway, "request_id", h.RequestID(ctx))
		h.backTo(w, r, http.StatusForbidden, "카드를 등록할 수 없습니다 / The card was not registered",
			"이 카드 등록은 이 링크의 것이 아닙니다. 페이지에서 카드 변경을 다시 시작해 주세요. / "+
				"This card registration does not belong to this link. Please start the change of card again from your page.")
		return
	}
	if authKey == "" || len(authKey) > 1024 || !utf8.ValidString(authKey) {
		h.backTo(w, r, http.StatusBadRequest, "카드를 등록할 수 없습니다 / The card was not registered",
			"결제대행사의 응답에 인증 키가 없습니다. 카드 변경을 다시 시작해 주세요. / The gateway's answer carried no auth key. Please start the change of card again.")
		return
	}
	before, err := h.openInvoices(ctx, l.CustomerID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The same redirect twice (a reload, a double click) stores one card: the vault answers a repeat of this
	// key with the card it stored.
	sum := sha256.Sum256([]byte("customer page card\x00" + l.CustomerID + "\x00" + reg.Gateway + "\x00" + customerKey + "\x00" + authKey))
	k, err := h.Vault.Issue(ctx, l.CustomerID, reg.Gateway, authKey, customerKey, idem.Request{Identity: sum[:], Hash: sum[:]})
	if err != nil {
		h.cardProblem(w, r, l, err)
		return
	}
	if !k.IsDefault {
		// The customer chose this card: it is the default from now on (the vault made it so already when
		// the customer had none or was in dunning).
		if _, err := h.Vault.MakeDefault(ctx, l.CustomerID, k.ID); err != nil {
			h.cardProblem(w, r, l, err)
			return
		}
	}
	h.Log.InfoContext(ctx, "portal: card changed on the customer page", "customer_id", l.CustomerID, "billing_key_id", k.ID,
		"gateway", reg.Gateway, "open_invoices", len(before), "request_id", h.RequestID(ctx))
	done := "card"
	if len(before) > 0 {
		done = h.settle(ctx, before, k.ID)
	}
	http.Redirect(w, r, h.Links.PageURL(chi.URLParam(r, "token"))+"?done="+done, http.StatusSeeOther)
}

// cardFail shows the gateway's own message on the customer's page.
func (h *Handler) cardFail(w http.ResponseWriter, r *http.Request) {
	l, ok := h.link(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	code, msg := clip(q.Get("code"), 80), clip(q.Get("message"), 300)
	if code == "PAY_PROCESS_CANCELED" || code == "USER_CANCEL" {
		h.show(w, r, l, http.StatusOK, "카드 변경을 취소했습니다. / You canceled the change of card.", "")
		return
	}
	text := "카드를 등록하지 못했습니다 / The card was not registered"
	if msg != "" {
		text += ": " + msg
	}
	if code != "" {
		text += " (" + code + ")"
	}
	h.show(w, r, l, http.StatusOK, "", text)
}

// cardProblem explains a refused issue on the customer's page, in the gateway's words where it gave any.
func (h *Handler) cardProblem(w http.ResponseWriter, r *http.Request, l portal.Link, err error) {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		h.fail(w, r, err)
		return
	}
	gwMsg, _ := ae.Extra["gateway_message"].(string)
	gwCode, _ := ae.Extra["gateway_code"].(string)
	said := ""
	if gwMsg != "" {
		said = ": " + gwMsg
		if gwCode != "" {
			said += " (" + gwCode + ")"
		}
	}
	if ae.Code == apperr.CodeCurrencyNotSupported {
		cur, _ := ae.Extra["currency"].(string)
		h.show(w, r, l, http.StatusUnprocessableEntity, "", "이 카드로는 구독 통화("+cur+")로 결제할 수 없습니다. 다른 카드를 등록해 주세요. / "+
			"This card cannot pay your subscription's currency ("+cur+"). Please register another card.")
		return
	}
	switch ae.Kind {
	case apperr.KindDeclined:
		h.show(w, r, l, http.StatusPaymentRequired, "", "카드가 거절되었습니다"+said+". 다른 카드를 등록해 주세요. / The card was declined"+said+". Please register another card.")
	case apperr.KindValidation:
		h.show(w, r, l, http.StatusUnprocessableEntity, "", "카드 등록을 완료하지 못했습니다"+said+". 카드 변경을 다시 시작해 주세요. / The card registration could not be completed"+said+". Please start the change of card again.")
	case apperr.KindGateway, apperr.KindUnavailable:
		h.show(w, r, l, http.StatusServiceUnavailable, "", "결제대행사가 지금 응답하지 않습니다. 잠시 후 다시 시도해 주세요. / The payment gateway is not answering right now. Please try again in a moment.")
	default:
		h.fail(w, r, err)
	}
}

// openInvoices is the customer's open invoices.
func (h *Handler) openInvoices(ctx context.Context, customerID string) ([]string, error) {
	list, err := h.Billing.ListInvoices(ctx, billing.InvoiceFilter{CustomerID: customerID, Status: "open"}, page.Request{Limit: 100})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Data))
	for _, inv := range list.Data {
		out = append(out, inv.ID)
	}
	return out, nil
}

// settle waits (at most SettleWait) for the immediate retry of each open invoice with the new card (keyID)
// to end, and says how it went: card_paid when every one is paid, card_declined when the new card was
// refused, else card_pending (the page then says the payment is being confirmed; the receipt email follows
// when it is paid). Only the new card's attempts count: they are the retry this change of card made (the
// key is new, so none came before it). Ordering all attempts by time cannot tell the retry from the
// decline that brought the customer here: under the test clock they share an instant, and attempt ids are
// random, so the old card's decline could pass for the new card's answer while the retry was in flight.
func (h *Handler) settle(ctx context.Context, invoices []string, keyID string) string {
	deadline := time.Now().Add(h.SettleWait)
	for {
		paid, declined := 0, false
		for _, id := range invoices {
			inv, err := h.Billing.GetInvoice(ctx, id)
			if err != nil {
				return "card_pending"
			}
			if inv.Status != "open" {
				paid++
				continue
			}
			for _, a := range inv.Attempts {
				if a.BillingKeyID != nil && *a.BillingKeyID == keyID && a.ResolvedAt != nil && a.Status != "succeeded" {
					declined = true
				}
			}
		}
		switch {
		case declined:
			return "card_declined"
		case paid == len(invoices):
			return "card_paid"
		case !time.Now().Before(deadline):
			return "card_pending"
		}
		select {
		case <-ctx.Done():
			return "card_pending"
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// backTo answers with a message page that links back to the customer's page.
func (h *Handler) backTo(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	h.render(w, status, view{Heading: heading, Message: msg, Back: h.Links.PageURL(chi.URLParam(r, "token"))})
}

// clip keeps at most n runes of a gateway's text, valid UTF-8 only.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
