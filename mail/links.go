package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dunningworks/billing/internal/store"
)

// Limits of RequestLink, per customer, on the wall clock.
const (
	// LinkInterval is the least time between two fresh-link emails.
	LinkInterval = 10 * time.Minute
	// LinkDailyMax is how many fresh-link emails a customer gets in 24 hours.
	LinkDailyMax = 5
)

var (
	// ErrLinkRateLimited: a fresh link was queued for this customer less than LinkInterval ago, or
	// LinkDailyMax in the last day.
	ErrLinkRateLimited = errors.New("mail: a fresh link was sent to this customer recently")
	// ErrLinkUnavailable: fresh links cannot be emailed (the kind is turned off, or the customer has no
	// address).
	ErrLinkUnavailable = errors.New("mail: no fresh link can be emailed to this customer")
)

// RequestLink queues an email with a fresh link to the customer's page, to the address on file (never an
// address the asker gives), and returns that address masked for the page to show ("k***@example.com").
// The expired page's button calls it; the link itself is signed when the email is written, so it is fresh
// even if the email waits for a retry. At most one per LinkInterval and LinkDailyMax a day per customer
// (ErrLinkRateLimited): an expired link cannot be used to flood the customer's inbox. at is the request's
// domain time (the timeline orders by it).
func (s *Service) RequestLink(ctx context.Context, customerID string, at time.Time) (string, error) {
	if !s.kinds[PortalLink] {
		return "", ErrLinkUnavailable
	}
	cus, err := s.billing.GetCustomer(ctx, customerID)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(cus.Email) == "" {
		return "", ErrLinkUnavailable
	}
	now := s.wall.Now()
	bucket := now.Unix() / int64(LinkInterval/time.Second)
	n, err := s.q(s.pool).QueueLinkMail(ctx, store.QueueLinkMailParams{EventID: fmt.Sprintf("portal_link:%s:%d", customerID, bucket),
		CustomerID: customerID, Now: now, OccurredAt: at, Since: now.Add(-LinkInterval), DaySince: now.Add(-24 * time.Hour),
		DailyMax: LinkDailyMax})
	if err != nil {
		return "", fmt.Errorf("queue fresh link email for %s: %w", customerID, err)
	}
	if n == 0 {
		return "", ErrLinkRateLimited
	}
	s.log.InfoContext(ctx, "fresh customer page link requested", "customer_id", customerID)
	return MaskAddress(cus.Email), nil
}

// MaskAddress shows an address so its owner recognizes it and a passer-by learns little: the first
// character of the local part and the domain ("k***@example.com").
func MaskAddress(addr string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(addr), "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}
