package api

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWebhookSource(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	cases := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxies: the peer", "198.51.100.4:5555", []string{"203.0.113.1"}, nil, "198.51.100.4"},
		{"untrusted peer: header ignored", "198.51.100.4:5555", []string{"203.0.113.1"}, proxies, "198.51.100.4"},
		{"trusted peer: last hop", "10.1.2.3:80", []string{"203.0.113.1"}, proxies, "203.0.113.1"},
		{"spoofed prefix ignored", "10.1.2.3:80", []string{"1.1.1.1, 203.0.113.1"}, proxies, "203.0.113.1"},
		{"chain of proxies", "10.1.2.3:80", []string{"203.0.113.1, 192.0.2.7", "10.9.9.9"}, proxies, "203.0.113.1"},
		{"no header: the proxy", "10.1.2.3:80", nil, proxies, "10.1.2.3"},
		{"garbage hop: the last readable", "10.1.2.3:80", []string{"203.0.113.1, nonsense"}, proxies, "10.1.2.3"},
		{"all trusted: the leftmost", "10.1.2.3:80", []string{"10.0.0.1"}, proxies, "10.0.0.1"},
		{"v6 peer", "[2001:db8::1]:443", nil, proxies, "2001:db8::1"},
		{"v4-mapped peer", "[::ffff:10.1.2.3]:80", []string{"203.0.113.5"}, proxies, "203.0.113.5"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/webhooks/sim", nil)
		r.RemoteAddr = c.remote
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		require.Equal(t, c.want, webhookSource(r, c.trusted), c.name)
	}
}
