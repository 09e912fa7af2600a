package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/dunningworks/billing/internal/apperr"
)

// maxWebhookBody caps an inbound webhook's body. Gateways' payment events are a few KiB (a Toss payment
// object, a Stripe event with its object); Toss and sim events are not signed, so anything read is read
// for whoever sent it. Larger bodies are refused with 413 before they are parsed.
const maxWebhookBody = 64 << 10

// webhookSource is the address a webhook's bucket is kept for: the peer's IP, or, when the peer is one of
// the trusted proxies (BILLING_TRUSTED_PROXIES), the rightmost X-Forwarded-For address that is not itself
// a trusted proxy. Without trusted proxies the header is ignored: anyone can write it.
func webhookSource(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := remoteIP(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !inPrefixes(peer, trusted) {
		return peer.String()
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			ip, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client.String() // a hop we cannot read: the last one we could is all we know
			}
			client = ip.Unmap()
			if !inPrefixes(client, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

func remoteIP(addr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

func inPrefixes(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// webhookRateLimit answers 429 with Retry-After when the sending address's bucket is empty
// (BILLING_WEBHOOK_RATE per second, a second's worth of burst). It runs before the body is read: a
// refused POST costs a map lookup. Gateways retry a non-2xx answer later, and polling settles every
// attempt meanwhile, so a genuine event refused here is late, not lost.
func (s *Server) webhookRateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.webhookLimiter == nil {
			next.ServeHTTP(w, r)
			return
		}
		src := webhookSource(r, s.TrustedProxies)
		if ok, wait := s.webhookLimiter.take(src); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			loggerFrom(r).Warn("webhook refused: rate limited", "source", src)
			writeError(w, r, &apperr.Error{Kind: apperr.KindRateLimited, Code: "rate_limited",
				Message: "too many webhooks from this address; retry after the Retry-After delay",
				Extra:   map[string]any{"retry_after_seconds": secs}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
