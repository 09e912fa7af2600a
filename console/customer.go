package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/mail"
	"github.com/dunningworks/billing/statemachine"
)

const (
	// timelineShown is how many timeline entries the account page shows, newest first.
	timelineShown = 150
	// auditedInvoices is how many of the customer's most recent invoices the page looks up support
	// actions for (one audit query each); older actions are in the audit log.
	auditedInvoices = 24
	// eventsRead bounds how far back a subscription's events are read.
	eventsRead = 2000
)

type subscriptionView struct {
	billing.Subscription
	Actions []string
	Picture machinePicture
	// Renews: only a subscription that renews can cancel at its period end.
	Renews bool
	// GraceUntil is the extend-grace form's default: a week past the current grace end.
	GraceUntil string
	// PauseUntil is the pause form's default: a week from now.
	PauseUntil string
}

type invoiceView struct {
	billing.Invoice
	Actions []string
	Last    *billing.Attempt
	// Held is set while the subscription's dunning is paused: nothing is charged until it resumes.
	Held bool
}

// paidInvoiceView is a paid invoice on the account page, with what can still be refunded.
type paidInvoiceView struct {
	billing.Invoice
	Refundable string
	// ToCard: it was paid by card, so the refund form offers the card (else only the balance).
	ToCard bool
}

// paidShown bounds the paid invoices offered for a refund on the account page.
const paidShown = 12

type timelineEntry struct {
	At           time.Time
	Kind         string // attempt, event, email or support
	Title        string
	Detail       string
	Subject      string
	DeclineClass string
	// MailStatus is an email's delivery status: queued, sending, sent, failed or skipped.
	MailStatus string
}

type accountView struct {
	Now           time.Time
	Customer      billing.Customer
	Keys          []billingkey.Key
	Subscriptions []subscriptionView
	Owing         []invoiceView
	// Paid are the paid invoices with money that can still be given back, newest first.
	Paid []paidInvoiceView
	// CreditNotes are the customer's refunds and credits, newest first.
	CreditNotes []billing.CreditNote
	// Dunning is which dunning policy applies to each subscription and why, with the customer's override.
	Dunning      billing.CustomerDunning
	Timeline     []timelineEntry
	MoreTimeline bool
}

// customer is the account page: everything support needs to decide, and the actions the current states
// allow. It reads only through the billing and billingkey services.
func (c *Console) customer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	cus, err := c.Billing.GetCustomer(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.Billing.Now()
	v := accountView{Now: now, Customer: cus}
	keys, err := c.Vault.List(ctx, id, page.Request{Limit: 100})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.Keys = keys.Data
	subs, err := c.Billing.ListCustomerSubscriptions(ctx, id, page.Request{Limit: 100})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	paused := map[string]bool{} // subscriptions whose dunning pause holds their invoices' charges
	for _, s := range subs.Data {
		v.Subscriptions = append(v.Subscriptions, newSubscriptionView(s, now))
		paused[s.ID] = s.Dunning.Paused && (s.Dunning.PausedUntil == nil || s.Dunning.PausedUntil.After(now))
	}
	invoices, err := c.allInvoices(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, inv := range invoices {
		if inv.Status != string(statemachine.InvoiceOpen) && inv.Status != string(statemachine.InvoiceUncollectible) {
			continue
		}
		paid, err := decimal.NewFromString(inv.AmountPaid)
		if err != nil {
			c.fail(w, r, fmt.Errorf("invoice %s amount paid %q: %w", inv.ID, inv.AmountPaid, err))
			return
		}
		iv := invoiceView{Invoice: inv, Actions: billing.InvoiceSupportActions(inv.Status, paid)}
		if inv.SubscriptionID != nil && paused[*inv.SubscriptionID] {
			iv.Actions, iv.Held = billing.InvoiceSupportActionsWhilePaused(inv.Status, paid), true
		}
		if n := len(inv.Attempts); n > 0 {
			iv.Last = &inv.Attempts[n-1]
		}
		v.Owing = append(v.Owing, iv)
	}
	for i := len(invoices) - 1; i >= 0 && len(v.Paid) < paidShown; i-- {
		inv := invoices[i]
		if inv.Status != string(statemachine.InvoicePaid) {
			continue
		}
		paid, err1 := decimal.NewFromString(inv.AmountPaid)
		refunded, err2 := decimal.NewFromString(inv.AmountRefunded)
		if err := errors.Join(err1, err2); err != nil {
			c.fail(w, r, fmt.Errorf("invoice %s amounts: %w", inv.ID, err))
			return
		}
		if left := paid.Sub(refunded); left.IsPositive() {
			pv := paidInvoiceView{Invoice: inv, Refundable: left.String()}
			for _, a := range inv.Attempts {
				pv.ToCard = pv.ToCard || a.Status == string(statemachine.AttemptSucceeded)
			}
			v.Paid = append(v.Paid, pv)
		}
	}
	if v.Dunning, err = c.Billing.GetCustomerDunning(ctx, id); err != nil {
		c.fail(w, r, err)
		return
	}
	notes, err := c.Billing.ListCreditNotes(ctx, billing.CreditNoteFilter{CustomerID: id}, page.Request{Limit: 100})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for i := len(notes.Data) - 1; i >= 0; i-- {
		v.CreditNotes = append(v.CreditNotes, notes.Data[i])
	}
	if v.Timeline, err = c.timeline(ctx, id, subs.Data, invoices); err != nil {
		c.fail(w, r, err)
		return
	}
	if len(v.Timeline) > timelineShown {
		v.Timeline, v.MoreTimeline = v.Timeline[:timelineShown], true
	}
	c.render(w, r, http.StatusOK, "customer", view{Title: cus.Name, Nav: "delinquent", Page: v})
}

func newSubscriptionView(s billing.Subscription, now time.Time) subscriptionView {
	v := subscriptionView{Subscription: s, Actions: billing.SubscriptionSupportActions(s.Status, s.Dunning.Paused),
		Picture: picture(statemachine.SubscriptionStatus(s.Status)),
		Renews:  s.Status == string(statemachine.SubscriptionActive) || s.Status == string(statemachine.SubscriptionTrialing)}
	grace := now
	if s.Dunning.GraceEndsAt != nil && s.Dunning.GraceEndsAt.After(now) {
		grace = *s.Dunning.GraceEndsAt
	}
	v.GraceUntil = inputAt(grace.Add(7 * 24 * time.Hour))
	v.PauseUntil = inputAt(now.Add(7 * 24 * time.Hour))
	return v
}

// allInvoices reads the customer's invoices (oldest first), with their attempts.
func (c *Console) allInvoices(ctx context.Context, customerID string) ([]billing.Invoice, error) {
	var out []billing.Invoice
	req := page.Request{Limit: page.Max}
	for {
		list, err := c.Billing.ListInvoices(ctx, billing.InvoiceFilter{CustomerID: customerID}, req)
		if err != nil {
			return nil, err
		}
		out = append(out, list.Data...)
		if list.NextCursor == nil || len(list.Data) == 0 {
			return out, nil
		}
		last := list.Data[len(list.Data)-1]
		req = page.Request{Limit: page.Max, AfterTime: last.CreatedAt, AfterID: last.ID}
	}
}

// timeline merges, newest first, the charge attempts (with their decline codes), the subscriptions'
// events (state transitions and what was notified), the emails the customer was sent (and how each
// delivery went) and the support actions of the audit log.
func (c *Console) timeline(ctx context.Context, customerID string, subs []billing.Subscription, invoices []billing.Invoice) ([]timelineEntry, error) {
	var out []timelineEntry
	if c.Pool != nil {
		emails, err := mail.CustomerEmails(ctx, c.Pool, customerID, timelineShown)
		if err != nil {
			return nil, err
		}
		for i := len(emails) - 1; i >= 0; i-- { // oldest first, like the rest: at one instant, in the order queued
			out = append(out, emailEntry(emails[i]))
		}
	}
	for _, inv := range invoices {
		for _, a := range inv.Attempts {
			e := timelineEntry{At: a.CreatedAt, Kind: "attempt", Subject: inv.ID,
				Title: fmt.Sprintf("Charge %s: %s %s", label(a.Status), amount(a.Amount), a.Currency)}
			parts := []string{"gateway " + a.Gateway, "order " + a.OrderID}
			if a.DeclineCode != nil {
				parts = append([]string{"decline " + *a.DeclineCode}, parts...)
			}
			if a.DeclineClass != nil {
				e.DeclineClass = *a.DeclineClass
			}
			parts = append(parts, sends(a))
			if a.Reason != nil {
				parts = append(parts, *a.Reason)
			}
			e.Detail = strings.Join(parts, " · ")
			out = append(out, e)
		}
	}
	for _, s := range subs {
		events, err := c.events(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		for _, ev := range events {
			if strings.HasPrefix(ev.Type, "payment.") {
				continue // the attempt rows say the same, with the decline code
			}
			out = append(out, timelineEntry{At: ev.OccurredAt, Kind: "event", Subject: s.ID, Title: ev.Type, Detail: summary(ev.Data)})
		}
	}
	targets := make([]string, 0, len(subs)+auditedInvoices)
	for _, s := range subs {
		targets = append(targets, s.ID)
	}
	for i := len(invoices) - 1; i >= 0 && i >= len(invoices)-auditedInvoices; i-- {
		targets = append(targets, invoices[i].ID)
	}
	for _, id := range targets {
		rows, err := c.Billing.AuditLog(ctx, audit.Filter{TargetID: id}, page.Request{Limit: page.Max})
		if err != nil {
			return nil, err
		}
		for _, a := range rows.Data {
			detail := fmt.Sprintf("by %s (%s, via %s) · reason: %s", a.Actor, a.Role, a.Origin, a.Reason)
			out = append(out, timelineEntry{At: a.At, Kind: "support", Subject: a.Target.ID, Title: "Support: " + a.Action, Detail: detail})
		}
	}
	// Oldest first, then reversed: at one instant a support action comes before the charge it asked for,
	// and the charge before the events it caused, so the newest-first list reads bottom-up as it happened.
	rank := map[string]int{"support": 0, "attempt": 1, "event": 2, "email": 3}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return rank[out[i].Kind] < rank[out[j].Kind]
	})
	slices.Reverse(out)
	return out, nil
}

// emailEntry is a customer email on the timeline, at its event's time: its kind and status in the title,
// then to whom, the attempts, when it was sent or is tried next, and the last failure.
func emailEntry(m mail.Email) timelineEntry {
	e := timelineEntry{At: m.OccurredAt, Kind: "email", Subject: m.SubscriptionID, MailStatus: m.Status,
		Title: fmt.Sprintf("Email %s: %s", m.Kind, m.Status)}
	if m.InvoiceID != "" {
		e.Subject = m.InvoiceID
	}
	var parts []string
	if m.To != "" {
		parts = append(parts, "to "+m.To)
	}
	parts = append(parts, fmt.Sprintf("%d attempt%s", m.Attempts, plural(m.Attempts)))
	if m.SentAt != nil {
		parts = append(parts, "sent at "+when(*m.SentAt))
	} else if m.Status == mail.StatusQueued && m.NextAttemptAt != nil {
		parts = append(parts, "next try "+when(*m.NextAttemptAt))
	}
	if m.LastError != "" {
		last := "last error: " + m.LastError
		if m.LastCode != 0 && !strings.Contains(m.LastError, fmt.Sprint(m.LastCode)) {
			last = fmt.Sprintf("last error: %d %s", m.LastCode, m.LastError)
		}
		parts = append(parts, last)
	}
	if m.Subject != "" {
		parts = append(parts, "“"+m.Subject+"”")
	}
	e.Detail = strings.Join(parts, " · ")
	return e
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// events reads a subscription's events, keeping the most recent eventsRead.
func (c *Console) events(ctx context.Context, subID string) ([]billing.TimelineEntry, error) {
	var out []billing.TimelineEntry
	var after int64
	for {
		batch, next, err := c.Billing.Timeline(ctx, subID, page.Max, after)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		if len(out) > eventsRead {
			out = out[len(out)-eventsRead:]
		}
		if next == 0 {
			return out, nil
		}
		after = next
	}
}

// sends says whether the gateway ever saw an attempt: support's first question about a pending charge.
func sends(a billing.Attempt) string {
	switch {
	case a.SendCount == 0 || a.SentAt == nil:
		return "never sent to the gateway"
	case a.SendCount == 1:
		return "sent " + a.SentAt.UTC().Format("2006-01-02 15:04:05Z")
	default:
		return fmt.Sprintf("sent %d times, last %s", a.SendCount, a.SentAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
}
