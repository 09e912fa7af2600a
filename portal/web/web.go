// Package web serves the customer's page behind a signed link (GET /c/{token}): the subscriptions, open
// invoices with "pay now", paid invoices with their receipts. Server-rendered HTML, no script, every form
// CSRF-protected (a double-submit cookie), security headers as the console sets them.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/portal"
)

//go:embed page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"amount": portal.Amount,
	"date":   func(t time.Time) string { return t.In(kst).Format("2006-01-02") },
}).ParseFS(pageFS, "page.html"))

var kst = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Seoul"); err == nil {
		return l
	}
	return time.FixedZone("KST", 9*3600)
}()

const csrfCookie = "portal_csrf"

// Billing is what the page reads and does through billing.
type Billing interface {
	GetCustomer(ctx context.Context, id string) (billing.Customer, error)
	GetInvoice(ctx context.Context, id string) (billing.Invoice, error)
	ListInvoices(ctx context.Context, f billing.InvoiceFilter, p page.Request) (page.List[billing.Invoice], error)
	ListCustomerSubscriptions(ctx context.Context, customerID string, p page.Request) (page.List[billing.Subscription], error)
	GetPlan(ctx context.Context, id string) (billing.Plan, error)
	RetryInvoice(ctx context.Context, a billing.Actor, invoiceID string, expectVersion int, reason string) (billing.RetryResult, error)
}

// Vault is what the page does with cards: billingkey's issue and default, the API's new-card path.
type Vault interface {
	List(ctx context.Context, customerID string, p page.Request) (page.List[billingkey.Key], error)
	Issue(ctx context.Context, customerID, gatewayName, authKey, customerKey string, req idem.Request) (billingkey.Key, error)
	MakeDefault(ctx context.Context, customerID, keyID string) (billingkey.Key, error)
}

// LinkMailer queues an email with a fresh link to the customer's page (mail.Service.RequestLink): to the
// address on file, rate-limited per customer; it returns the address masked.
type LinkMailer interface {
	RequestLink(ctx context.Context, customerID string, at time.Time) (string, error)
}

// Registration is a gateway whose own card-registration flow the page starts: a Toss-shaped one (toss, or
// sim through pgsim's stand-in), whose SDK takes a client key and is handed customerKey, successUrl and
// failUrl. app lists them in BILLING_GATEWAYS order.
type Registration struct {
	// Gateway is the gateway's name in BILLING_GATEWAYS (the billing key is issued there).
	Gateway string
	// ClientKey is the SDK's client key (TOSS_CLIENT_KEY; pgsim's test_ck_sim).
	ClientKey string
	// SDK is the script that defines TossPayments (https://js.tosspayments.com/v1/payment; pgsim's
	// /js/v1/payment).
	SDK string
	// Origins are the origins the SDK's own frames and requests come from (the page's CSP allows them).
	Origins []string
}

// Deps is what the page needs; app wires it.
type Deps struct {
	Links    *portal.Signer
	Billing  Billing
	Receipts *portal.Receipts
	Merchant string
	Log      *slog.Logger
	// RequestID names a request in logs (api.RequestIDFrom); nil: none.
	RequestID func(ctx context.Context) string
	// Vault and Registrations make "change card"; without either the page offers none.
	Vault         Vault
	Registrations []Registration
	// Mailer emails a fresh link to the customer of an expired one (mail.Service); nil: the expired page
	// offers none.
	Mailer LinkMailer
	// Clock is domain time (the fresh-link email's place in the timeline); nil: the system clock.
	Clock clock.Clock
	// SettleWait is how long the card's success URL waits for the open invoices' immediate retry to
	// finish before showing the page (default 8s); past it the page says the payment is being confirmed.
	SettleWait time.Duration
}

// Handler serves /c/{token} and its forms. Mount it at /c. It is a chi router, so the API's route walk
// (the OpenAPI coverage test) sees its routes.
type Handler struct {
	Deps
	chi.Router
}

// New builds the handler; its routes are relative to /c.
func New(d Deps) *Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.RequestID == nil {
		d.RequestID = func(context.Context) string { return "" }
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.SettleWait <= 0 {
		d.SettleWait = 8 * time.Second
	}
	h := &Handler{Deps: d}
	r := chi.NewRouter()
	r.Use(securityHeaders)
	r.Get("/{token}", h.page)
	r.Post("/{token}/invoices/{id}/pay", h.pay)
	r.Get("/{token}/invoices/{id}/receipt.pdf", h.receiptPDF)
	r.Get("/{token}/card/success", h.cardSuccess)
	r.Get("/{token}/card/fail", h.cardFail)
	r.Post("/{token}/link", h.freshLink)
	h.Router = r
	return h
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		// The token is in the path: never send it to another site.
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		}
		next.ServeHTTP(w, r)
	})
}

type view struct {
	Merchant string
	Status   int
	Heading  string
	Message  string
	Flash    string
	Error    string
	Customer *billing.Customer
	Subs     []billing.Subscription
	// PlanNames names each subscription's plan (by plan id): a customer knows "Basic", not plan_4kyt….
	PlanNames   map[string]string
	Open        []billing.Invoice
	Paid        []billing.Invoice
	Token       string
	CSRF        string
	LinkExpires time.Time
	// Card is the customer's default card (nil: none); Change starts the gateway's registration (nil: the
	// page offers no change of card).
	Card   *billingkey.Key
	Change *changeCard
	// Nonce lets the page's one inline script run (CSP).
	Nonce string
	// Back links a message page back to the customer's page ("" for none).
	Back string
	// Fresh offers an expired link's customer a new link by email (a form posting to /c/{token}/link).
	Fresh bool
}

// changeCard is what the page hands the gateway's SDK: requestBillingAuth('카드', {customerKey, successUrl,
// failUrl}) under the client key.
type changeCard struct {
	Gateway, ClientKey, SDK, CustomerKey, SuccessURL, FailURL string
}

func (h *Handler) render(w http.ResponseWriter, status int, v view) {
	v.Merchant, v.Status = h.Merchant, status
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, v); err != nil {
		h.Log.Error("portal: render", "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) message(w http.ResponseWriter, status int, heading, msg string) {
	h.render(w, status, view{Heading: heading, Message: msg})
}

// link verifies the path's token; it answers the refusal itself and reports false.
func (h *Handler) link(w http.ResponseWriter, r *http.Request) (portal.Link, bool) {
	l, err := h.Links.Verify(chi.URLParam(r, "token"))
	switch {
	case err == nil:
		return l, true
	case errors.Is(err, portal.ErrLinkExpired):
		h.expired(w, r, l)
	default:
		h.message(w, http.StatusNotFound, "유효하지 않은 링크 / This link is not valid",
			"링크가 올바르지 않습니다. 이메일의 링크를 그대로 열어 주세요. / Please open the link exactly as it is in the email.")
	}
	return portal.Link{}, false
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if apperr.IsKind(err, apperr.KindNotFound) {
		h.message(w, http.StatusNotFound, "찾을 수 없습니다 / Not found", "이 링크로 볼 수 있는 항목이 아닙니다. / There is nothing here for this link.")
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	id := h.RequestID(r.Context())
	h.Log.Error("portal: request failed", "path_kind", "customer page", "request_id", id, "err", err)
	h.message(w, http.StatusInternalServerError, "문제가 발생했습니다 / Something went wrong",
		"잠시 후 다시 시도해 주세요. / Please try again in a moment. ("+id+")")
}

func (h *Handler) csrf(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/c", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: 86400})
	return v
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	l, ok := h.link(w, r)
	if !ok {
		return
	}
	var flash string
	switch r.URL.Query().Get("done") {
	case "paid":
		flash = "결제되었습니다. 감사합니다. / Paid. Thank you."
	case "declined":
		flash = "카드 결제가 거절되었습니다. 카드를 변경해 주세요. / The card was declined. Please change the card."
	case "pending":
		flash = "결제를 확인하고 있습니다. / We are confirming the payment."
	case "card":
		flash = "카드가 변경되었습니다. / Your card was changed."
	case "card_paid":
		flash = "카드가 변경되었고 미결제 청구서가 결제되었습니다. 감사합니다. / Your card was changed and the open invoice was paid. Thank you."
	case "card_declined":
		flash = "카드는 변경되었지만 결제가 거절되었습니다. 다른 카드를 등록해 주세요. / Your card was changed, but the payment was declined. Please register another card."
	case "card_pending":
		flash = "카드가 변경되었습니다. 새 카드로 결제하고 있습니다. / Your card was changed; we are charging it now."
	}
	h.show(w, r, l, http.StatusOK, flash, "")
}

// show renders the customer's page with a flash (good news) or an error.
func (h *Handler) show(w http.ResponseWriter, r *http.Request, l portal.Link, status int, flash, problem string) {
	ctx := r.Context()
	cus, err := h.Billing.GetCustomer(ctx, l.CustomerID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	subs, err := h.Billing.ListCustomerSubscriptions(ctx, l.CustomerID, page.Request{Limit: 50})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tok := chi.URLParam(r, "token")
	v := view{Customer: &cus, Subs: subs.Data, Token: tok, CSRF: h.csrf(w, r), LinkExpires: l.ExpiresAt, Flash: flash, Error: problem,
		PlanNames: map[string]string{}}
	for _, sub := range subs.Data {
		if _, ok := v.PlanNames[sub.PlanID]; ok {
			continue
		}
		plan, err := h.Billing.GetPlan(ctx, sub.PlanID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		v.PlanNames[sub.PlanID] = plan.Name
	}
	for _, st := range []string{"open", "paid"} {
		list, err := h.Billing.ListInvoices(ctx, billing.InvoiceFilter{CustomerID: l.CustomerID, Status: st}, page.Request{Limit: 100})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if st == "open" {
			v.Open = list.Data
		} else {
			v.Paid = list.Data
		}
	}
	if h.Vault != nil {
		keys, err := h.Vault.List(ctx, l.CustomerID, page.Request{Limit: 100})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for i := range keys.Data {
			if k := keys.Data[i]; k.IsDefault && k.Status == billingkey.StatusActive {
				v.Card = &k
			}
		}
		if reg, ok := h.registration(v.Card); ok {
			ck, err := h.Links.CustomerKey(l)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			base := h.Links.PageURL(tok) + "/card/"
			v.Change = &changeCard{Gateway: reg.Gateway, ClientKey: reg.ClientKey, SDK: reg.SDK, CustomerKey: ck,
				SuccessURL: base + "success?gateway=" + reg.Gateway, FailURL: base + "fail?gateway=" + reg.Gateway}
			v.Nonce = nonce()
			// The SDK and the page's one inline script (which hands it the registration) may run; nothing else.
			src := " " + originOf(reg.SDK)
			for _, o := range reg.Origins {
				src += " " + o
			}
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "+
				"script-src 'nonce-"+v.Nonce+"'"+src+"; connect-src"+src+"; frame-src"+src+"; form-action 'self'"+src+
				"; frame-ancestors 'none'; base-uri 'none'")
		}
	}
	h.render(w, status, v)
}

// registration picks the gateway whose registration the page starts: the one of the customer's current
// card when it has a flow, else the first in BILLING_GATEWAYS order.
func (h *Handler) registration(card *billingkey.Key) (Registration, bool) {
	if card != nil {
		for _, reg := range h.Registrations {
			if reg.Gateway == card.Gateway {
				return reg, true
			}
		}
	}
	if len(h.Registrations) > 0 {
		return h.Registrations[0], true
	}
	return Registration{}, false
}

func (h *Handler) registrationNamed(name string) (Registration, bool) {
	for _, reg := range h.Registrations {
		if reg.Gateway == name {
			return reg, true
		}
	}
	return Registration{}, false
}

func nonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// originOf is scheme://host of a URL ("" when it has none).
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}

// ownInvoice loads an invoice of the link's customer; another customer's is not found.
func (h *Handler) ownInvoice(ctx context.Context, l portal.Link, id string) (billing.Invoice, error) {
	inv, err := h.Billing.GetInvoice(ctx, id)
	if err == nil && inv.CustomerID != l.CustomerID {
		err = apperr.NotFound("invoice", id)
	}
	return inv, err
}

// pay is "pay now": billing's retry of the invoice with the current default card, under the same fences
// as support's retry (one attempt in flight per invoice; a paid invoice is a no-op), so a double click
// charges once.
func (h *Handler) pay(w http.ResponseWriter, r *http.Request) {
	l, ok := h.link(w, r)
	if !ok {
		return
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || r.ParseForm() != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 || len(c.Value) < 32 {
		h.message(w, http.StatusForbidden, "다시 시도해 주세요 / Please try again", "양식이 만료되었습니다. 페이지를 새로 고쳐 주세요. / The form expired; reload the page.")
		return
	}
	inv, err := h.ownInvoice(r.Context(), l, chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	done := "paid"
	if inv.Status == "open" {
		a := billing.Actor{ID: "customer:" + l.CustomerID, Role: "customer", RequestID: h.RequestID(r.Context()), Origin: "customer_page"}
		res, err := h.Billing.RetryInvoice(r.Context(), a, inv.ID, 0, "the customer pressed pay now on the customer page")
		switch {
		case apperr.IsKind(err, apperr.KindConflict):
			done = "pending"
		case err != nil:
			h.fail(w, r, err)
			return
		case res.Invoice.Status == "paid":
		case res.Charge != nil && res.Charge.Outcome == "declined", res.Charge != nil && res.Charge.Outcome == "no_key":
			done = "declined"
		default:
			done = "pending"
		}
	}
	http.Redirect(w, r, h.Links.PageURL(chi.URLParam(r, "token"))+"?done="+done, http.StatusSeeOther)
}

func (h *Handler) receiptPDF(w http.ResponseWriter, r *http.Request) {
	l, ok := h.link(w, r)
	if !ok {
		return
	}
	inv, err := h.ownInvoice(r.Context(), l, chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	pdf, err := h.Receipts.PDF(r.Context(), inv.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `inline; filename="receipt-`+inv.ID+`.pdf"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(pdf)))
	_, _ = w.Write(pdf)
}
