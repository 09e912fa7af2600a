package notify

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Outgoing webhooks go to URLs an admin typed in. In production they must not reach the service's own
// network: the loopback interface, private ranges, link-local addresses (the cloud metadata endpoint at
// 169.254.169.254 among them) — a server-side request forgery through the webhook sender. The check is made
// when an endpoint is created (a literal address, or "localhost") and again on every connection, on the
// address actually dialed, so a name that resolves to a private address later (DNS rebinding) is refused
// too. Development (BILLING_MODE=dev) allows them, so a receiver on the same machine works.

// errPrivateDestination is why a delivery to a refused address failed.
var errPrivateDestination = errors.New("destination address is not public (private, loopback or link-local networks are refused)")

var (
	// nat64 is the well-known NAT64 prefix (RFC 6052): 64:ff9b::a.b.c.d reaches a.b.c.d, so that address
	// is the one to judge.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// notPublic are ranges that IsGlobalUnicast lets through but that lead inside or nowhere: carrier-grade
	// NAT, "this network", IETF protocol assignments, benchmarking, reserved; and the IPv6 forms that embed
	// an IPv4 address or a site (local-use NAT64, 6to4, IPv4-compatible, IPv4-translated, site-local).
	notPublic = []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("64:ff9b:1::/48"), netip.MustParsePrefix("2002::/16"), netip.MustParsePrefix("::/96"),
		netip.MustParsePrefix("::ffff:0:0:0/96"), netip.MustParsePrefix("fec0::/10"),
	}
)

// publicAddr reports whether a webhook may be sent to a.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		return publicAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// checkHost refuses, at creation, a URL host that is a non-public address or names the local machine.
func checkHost(host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return errPrivateDestination
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil && !publicAddr(a) {
		return errPrivateDestination
	}
	return nil
}

// publicOnlyTransport dials public addresses only: the check runs on the resolved address of every
// connection. It goes direct (no proxy from the environment), since the address checked must be the one
// the event is sent to.
func publicOnlyTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook destination %q: %w", address, err)
			}
			if !publicAddr(ap.Addr()) {
				return errPrivateDestination
			}
			return nil
		}}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	return t
}
