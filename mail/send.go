package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	gomail "github.com/wneessen/go-mail"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
)

// Result is what one Send did.
type Result struct {
	// Attempted is false when the ticket was stale (the attempt was made, the row is not due, or another
	// sender holds it).
	Attempted bool
	// Status is the row's status afterwards; Code the SMTP server's reply code to a failure (0: none).
	Status string
	Code   int
}

// Send makes attempt number attempt of email id: claim the row (status 'sending', Message-ID fixed,
// lease taken), write the email, hand it to the SMTP server, record the outcome. A 4xx answer or no
// answer is retried on the backoff until MaxAttempts; a 5xx marks the email failed. A ticket for an
// attempt already made, or for a row another sender holds, does nothing.
func (s *Service) Send(ctx context.Context, id int64, attempt int) (Result, error) {
	row, err := s.q(s.pool).GetMail(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("load email %d: %w", id, err)
	}
	now := s.wall.Now()
	if (row.Status != StatusQueued && row.Status != StatusSending) || int(row.Attempts) != attempt-1 ||
		row.NextAttemptAt == nil || row.NextAttemptAt.After(now) {
		return Result{Status: row.Status}, nil
	}
	row, err = s.q(s.pool).ClaimMail(ctx, store.ClaimMailParams{ID: id, PrevAttempts: int32(attempt - 1), Now: now,
		LeaseUntil: now.Add(s.t.Lease), MessageID: s.MessageID(id)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, nil // another sender claimed it first
	}
	if err != nil {
		return Result{}, fmt.Errorf("claim email %d: %w", id, err)
	}
	log := s.log.With("email_id", id, "event_id", row.EventID, "kind", row.Kind, "attempt", attempt)

	msg, env, skip, err := s.compose(ctx, row)
	if err != nil {
		// Reading the customer or rendering failed: try again later, like a server that did not answer.
		return s.record(ctx, log, row, attempt, 0, "compose: "+clean(err.Error()))
	}
	if skip != "" {
		return s.finish(ctx, log, row, attempt, StatusSkipped, 0, skip)
	}
	if err := s.q(s.pool).SetMailEnvelope(ctx, store.SetMailEnvelopeParams{ID: id, Attempts: int32(attempt),
		Recipient: &env.recipient, Subject: &env.subject}); err != nil {
		return Result{}, fmt.Errorf("email %d envelope: %w", id, err)
	}
	if h := s.hooks.BeforeSend; h != nil {
		if err := h(id); err != nil {
			return Result{}, err
		}
	}
	code, failure := s.deliver(ctx, msg)
	if h := s.hooks.AfterSend; h != nil && failure == "" {
		if err := h(id); err != nil {
			return Result{}, err
		}
	}
	if failure == "" {
		return s.finish(ctx, log, row, attempt, StatusSent, 0, "")
	}
	if code >= 500 {
		return s.finish(ctx, log, row, attempt, StatusFailed, code, failure)
	}
	return s.record(ctx, log, row, attempt, code, failure)
}

// record notes a failed attempt that may be retried: queued again on the backoff, or failed when the
// attempts are used up.
func (s *Service) record(ctx context.Context, log logger, row store.MailOutbox, attempt, code int, failure string) (Result, error) {
	if attempt >= s.t.MaxAttempts {
		return s.finish(ctx, log, row, attempt, StatusFailed, code, failure+fmt.Sprintf(" (gave up after %d attempts)", attempt))
	}
	next := s.wall.Now().Add(s.t.Backoff(attempt))
	p := store.RecordMailParams{ID: row.ID, Attempts: int32(attempt), Status: StatusQueued, NextAttemptAt: &next,
		LastError: &failure, Now: s.wall.Now()}
	if code != 0 {
		c := int32(code)
		p.LastCode = &c
	}
	// The attempt happened: record it even if the job's context is ending.
	n, err := s.q(s.pool).RecordMail(context.WithoutCancel(ctx), p)
	if err != nil {
		return Result{}, fmt.Errorf("record email %d attempt %d: %w", row.ID, attempt, err)
	}
	if n > 0 {
		s.metrics.sends.WithLabelValues("retrying").Inc()
		log.InfoContext(ctx, "customer email attempt failed; will retry", "smtp_code", code, "error", failure, "next_attempt_at", next)
	}
	return Result{Attempted: true, Status: StatusQueued, Code: code}, nil
}

// finish records a final outcome: sent, failed or skipped.
func (s *Service) finish(ctx context.Context, log logger, row store.MailOutbox, attempt int, status string, code int, failure string) (Result, error) {
	now := s.wall.Now()
	p := store.RecordMailParams{ID: row.ID, Attempts: int32(attempt), Status: status, Now: now}
	if failure != "" {
		p.LastError = &failure
	}
	if code != 0 {
		c := int32(code)
		p.LastCode = &c
	}
	if status == StatusSent {
		p.SentAt = &now
	}
	n, err := s.q(s.pool).RecordMail(context.WithoutCancel(ctx), p)
	if err != nil {
		return Result{}, fmt.Errorf("record email %d attempt %d: %w", row.ID, attempt, err)
	}
	if n > 0 {
		s.metrics.sends.WithLabelValues(status).Inc()
		switch status {
		case StatusSent:
			log.DebugContext(ctx, "customer email sent")
		case StatusSkipped:
			log.InfoContext(ctx, "customer email skipped", "why", failure)
		default:
			log.WarnContext(ctx, "customer email failed", "smtp_code", code, "error", failure)
		}
	}
	return Result{Attempted: true, Status: status, Code: code}, nil
}

type logger = interface {
	InfoContext(ctx context.Context, msg string, args ...any)
	WarnContext(ctx context.Context, msg string, args ...any)
	DebugContext(ctx context.Context, msg string, args ...any)
}

type envelope struct{ recipient, subject string }

// compose writes the email of an outbox row, or says why none is sent.
func (s *Service) compose(ctx context.Context, row store.MailOutbox) (*gomail.Msg, envelope, string, error) {
	kind := Kind(row.Kind)
	if !s.kinds[kind] {
		return nil, envelope{}, "the kind " + row.Kind + " is turned off (BILLING_MAIL_KINDS)", nil
	}
	var sub *billing.Subscription
	if row.SubscriptionID != nil {
		v, err := s.billing.GetSubscription(ctx, *row.SubscriptionID)
		if err != nil {
			return nil, envelope{}, "", err
		}
		sub = &v
	}
	customerID := deref(row.CustomerID)
	if customerID == "" && sub != nil {
		customerID = sub.CustomerID
	}
	if customerID == "" {
		return nil, envelope{}, "the event names no customer", nil
	}
	cus, err := s.billing.GetCustomer(ctx, customerID)
	if ae := (*apperr.Error)(nil); errors.As(err, &ae) && ae.Kind == apperr.KindNotFound {
		return nil, envelope{}, "the customer does not exist", nil
	}
	if err != nil {
		return nil, envelope{}, "", err
	}
	if strings.TrimSpace(cus.Email) == "" {
		return nil, envelope{}, "the customer has no email address", nil
	}
	d, err := s.data(ctx, kind, row, cus, sub)
	if err != nil {
		return nil, envelope{}, "", err
	}
	var pdf []byte
	if kind == PaymentSucceeded && s.receipts != nil && d.Invoice != nil {
		if pdf, err = s.receipts.PDF(ctx, d.Invoice.ID); err != nil {
			s.log.WarnContext(ctx, "receipt PDF not made; the receipt email goes without it", "invoice_id", d.Invoice.ID, "err", err)
			pdf = nil
		}
		d.Receipt = len(pdf) > 0
	}
	r, err := s.templates.Render(d.Locale, kind, d)
	if err != nil {
		return nil, envelope{}, "", err
	}

	m := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8))
	m.FromMailAddress(s.from)
	to := &mail.Address{Name: cus.Name, Address: cus.Email}
	m.ToMailAddress(to)
	m.Subject(r.Subject)
	m.SetMessageIDWithValue(strings.Trim(deref(row.MessageID), "<>"))
	m.SetDateWithValue(s.wall.Now())
	m.SetGenHeader(gomail.Header("X-Billing-Event-Id"), row.EventID)
	m.SetGenHeader(gomail.Header("X-Billing-Email-Kind"), row.Kind)
	m.SetBodyString(gomail.TypeTextPlain, r.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	if len(pdf) > 0 {
		name := "receipt-" + strings.NewReplacer("/", "-", " ", "-").Replace(d.Invoice.Number) + ".pdf"
		if d.Invoice.Number == "" {
			name = "receipt-" + d.Invoice.ID + ".pdf"
		}
		if err := m.AttachReader(name, bytes.NewReader(pdf), gomail.WithFileContentType("application/pdf")); err != nil {
			return nil, envelope{}, "", err
		}
	}
	return m, envelope{recipient: cus.Email, subject: r.Subject}, "", nil
}

// eventData are the fields of the events' data an email uses.
type eventData struct {
	DeclineCode      string     `json:"decline_code"`
	Reason           string     `json:"reason"`
	GraceEndsAt      *time.Time `json:"grace_ends_at"`
	DunningEndsAt    *time.Time `json:"dunning_ends_at"`
	FinalAction      string     `json:"final_action"`
	PreviousPlanID   string     `json:"previous_plan_id"`
	PreviousQuantity int        `json:"previous_quantity"`
	RenewsAt         *time.Time `json:"renews_at"`
	Trial            bool       `json:"trial"`
	// an upcoming renewal's charge
	PlanID        string `json:"plan_id"`
	Quantity      int    `json:"quantity"`
	Currency      string `json:"currency"`
	Amount        string `json:"amount"`
	Tax           string `json:"tax"`
	CreditApplied string `json:"credit_applied"`
	AmountDue     string `json:"amount_due"`
}

// data gathers what the templates show, from the event and the current state of what it is about.
func (s *Service) data(ctx context.Context, kind Kind, row store.MailOutbox, cus billing.Customer, sub *billing.Subscription) (Data, error) {
	var ev eventData
	if len(row.Data) > 0 {
		if err := json.Unmarshal(row.Data, &ev); err != nil {
			return Data{}, fmt.Errorf("event data: %w", err)
		}
	}
	d := Data{Kind: kind, Locale: cus.Locale, Merchant: s.from.Name, Customer: CustomerData{Name: cus.Name, Email: cus.Email, Zone: seoul},
		DeclineCode: ev.DeclineCode, NoCard: ev.Reason == "no_chargeable_billing_key", GraceEndsAt: ev.GraceEndsAt,
		DunningEndsAt: ev.DunningEndsAt, Unpaid: ev.FinalAction == "unpaid", RenewsAt: ev.RenewsAt, Trial: ev.Trial}
	if !contains(Locales, d.Locale) {
		d.Locale = Locales[0]
	}
	if d.Merchant == "" {
		d.Merchant = s.from.Address
	}
	if cus.TimeZone != nil {
		if z, err := time.LoadLocation(*cus.TimeZone); err == nil {
			d.Customer.Zone = z
		}
	}
	if sub != nil {
		plan, err := s.billing.GetPlan(ctx, sub.PlanID)
		if err != nil {
			return Data{}, err
		}
		d.Subscription = &SubscriptionData{ID: sub.ID, Status: sub.Status, Plan: plan.Name, Quantity: sub.Quantity, Amount: plan.Amount,
			Currency: plan.Currency, PeriodEnd: sub.CurrentPeriodEnd, NextRenewalAt: sub.NextRenewalAt}
		if d.GraceEndsAt == nil {
			d.GraceEndsAt = sub.Dunning.GraceEndsAt
		}
		if d.DunningEndsAt == nil {
			d.DunningEndsAt = sub.Dunning.DunningEndsAt
		}
		if ev.PreviousPlanID != "" {
			if prev, err := s.billing.GetPlan(ctx, ev.PreviousPlanID); err == nil {
				d.PreviousPlan, d.PreviousQuantity = prev.Name, ev.PreviousQuantity
			}
		}
	}
	if kind == RenewalUpcoming && ev.Amount != "" {
		r := &RenewalData{Quantity: ev.Quantity, Currency: ev.Currency, Amount: ev.Amount, Tax: ev.Tax, CreditApplied: ev.CreditApplied,
			AmountDue: ev.AmountDue, HasTax: nonZero(ev.Tax), HasCredit: nonZero(ev.CreditApplied)}
		if r.AmountDue == "" {
			r.AmountDue = r.Amount
		}
		if d.Subscription != nil {
			r.Plan = d.Subscription.Plan
		}
		if ev.PlanID != "" {
			if p, err := s.billing.GetPlan(ctx, ev.PlanID); err == nil {
				r.Plan = p.Name
			}
		}
		d.Renewal = r
	}
	if row.InvoiceID != nil {
		inv, err := s.billing.GetInvoice(ctx, *row.InvoiceID)
		if err != nil {
			return Data{}, err
		}
		d.Invoice = &InvoiceData{ID: inv.ID, Number: deref(inv.Number), Currency: inv.Currency, Total: inv.Total, AmountDue: inv.AmountDue,
			AmountPaid: inv.AmountPaid, PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd, PaidAt: inv.PaidAt}
		for _, l := range inv.Lines {
			d.Invoice.Lines = append(d.Invoice.Lines, LineData{Description: l.Description, Amount: l.Total})
		}
		if kind == PaymentFailedSoft && inv.Status == "open" {
			d.NextRetryAt = inv.NextAttemptAt
		}
		if kind == PaymentFailedSoft || kind == PaymentFailedHard {
			// Dunning may have sent the invoice to the customer's backup card: say which and when, so
			// the customer is not told their card will be retried (or that only a new card helps) and
			// then charged on another one.
			b, ok, err := s.billing.UpcomingBackup(ctx, inv.ID)
			if err != nil {
				return Data{}, err
			}
			if ok {
				d.Backup, d.NextRetryAt = &BackupData{Card: b.Card.Label(), At: b.At}, nil
			}
		}
		if kind == PaymentSucceeded {
			// The receipt names the card charged, and says so plainly when it was the backup card: one
			// email per payment, so payment.backup_card_charged has no email of its own
			// (docs/customer-emails.md).
			p, ok, err := s.billing.InvoicePayment(ctx, inv.ID)
			if err != nil {
				return Data{}, err
			}
			if ok {
				d.Payment = &PaymentData{Card: p.Card.Label(), Backup: p.Backup}
				if p.Declined != nil {
					d.Payment.DeclinedCard = p.Declined.Card.Label()
				}
			}
		}
	}
	if s.links != nil {
		link, err := s.links.CustomerPage(ctx, cus.ID)
		if err != nil {
			s.log.WarnContext(ctx, "customer page link not made; the email goes without it", "customer_id", cus.ID, "err", err)
		}
		d.Link = link
	}
	return d, nil
}

// deliver hands the message to the SMTP server. It returns "" when the server accepted it (250 to the
// end of DATA, whatever happened after), else why not and the server's reply code (0: no reply, e.g.
// the connection failed or timed out).
func (s *Service) deliver(ctx context.Context, m *gomail.Msg) (int, string) {
	opts := []gomail.Option{gomail.WithPort(s.smtp.Port), gomail.WithTimeout(s.t.Timeout), gomail.WithHELO(helo(s.domain))}
	if s.smtp.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.smtp.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.smtp.Username),
			gomail.WithPassword(s.smtp.Password.Reveal()))
	}
	c, err := gomail.NewClient(s.smtp.Host, opts...)
	if err != nil {
		return 0, "smtp client: " + clean(err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, s.t.Timeout)
	defer cancel()
	err = c.DialAndSendWithContext(ctx, m)
	if m.IsDelivered() {
		return 0, "" // accepted; an error after that (RSET, QUIT) does not unsend it
	}
	if err == nil {
		return 0, "the server did not confirm the message"
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode(), clean(err.Error())
	}
	return 0, clean(err.Error())
}

func helo(domain string) string {
	if domain == "" {
		return "localhost"
	}
	return domain
}

// clean makes an error safe to store: valid UTF-8, no NUL, short.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "..."
	}
	return s
}

// nonZero says whether a decimal string is other than zero ("" is zero).
func nonZero(s string) bool { return strings.Trim(s, "0.-") != "" }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
