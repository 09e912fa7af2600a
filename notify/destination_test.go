package notify

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every way of writing an address inside our network is refused; public addresses, including a public one
// reached through NAT64, are not.
func TestPublicAddr(t *testing.T) {
	t.Parallel()
	for _, a := range []string{
		"127.0.0.1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.1.1", "0.0.0.0", "0.1.2.3",
		"192.0.0.8", "198.18.0.1", "240.0.0.1", "255.255.255.255", "224.0.0.1",
		"::1", "::", "fd00::1", "fe80::1", "fec0::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.5", // IPv4-mapped
		"64:ff9b::a00:5", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", // NAT64 of private addresses
		"64:ff9b:1::a00:5",               // local-use NAT64
		"2002:7f00:1::", "2002:a00:5::1", // 6to4
		"::7f00:1", "::a00:5", // IPv4-compatible
		"::ffff:0:7f00:1", "::ffff:0:a00:5", // IPv4-translated (SIIT)
	} {
		require.False(t, publicAddr(netip.MustParseAddr(a)), a)
	}
	for _, a := range []string{"8.8.8.8", "203.0.114.7", "1.1.1.1", "2606:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"} {
		require.True(t, publicAddr(netip.MustParseAddr(a)), a)
	}
}
