package gatewaytest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/gateway/toss"
)

// SimSecretKey is the secret StartSim configures on both sides.
const SimSecretKey = "test_sk_sim"

// Sim is an in-process pgsim with a "sim" toss adapter pointed at it.
type Sim struct {
	Server  *pgsim.Server
	HTTP    *httptest.Server
	Gateway *toss.Adapter
	Bank    Bank
}

// StartSim serves a pgsim on a loopback listener and returns it with an adapter whose requests time out
// after clientTimeout (0: 2 s). Both stop when the test ends. opts.SecretKey defaults to SimSecretKey.
func StartSim(t testing.TB, opts pgsim.Options, clientTimeout time.Duration) *Sim {
	t.Helper()
	if opts.SecretKey == "" {
		opts.SecretKey = SimSecretKey
	}
	if clientTimeout <= 0 {
		clientTimeout = 2 * time.Second
	}
	srv := pgsim.New(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		srv.Close()
	})
	g := toss.New(toss.Config{BaseURL: hs.URL, SecretKey: opts.SecretKey, Name: "sim", Timeout: clientTimeout, Currencies: pgsim.Currencies})
	return &Sim{Server: srv, HTTP: hs, Gateway: g, Bank: SimBank(srv)}
}

// SimBank adapts a pgsim server to Bank.
func SimBank(srv *pgsim.Server) Bank { return &simBank{srv: srv} }

type simBank struct{ srv *pgsim.Server }

func (b *simBank) AuthKey(behavior string) (string, error) {
	return behavior + "-" + newID("k"), nil
}

func (b *simBank) Inject(f Fault) error {
	one := pgsim.Rule{Count: 1}
	var fs pgsim.Faults
	switch f {
	case FaultCommitThenTimeout:
		fs.CommitThenTimeout = &pgsim.CommitThenTimeoutFault{Rule: one}
	case Fault5xxBeforeCommit:
		fs.Error5xxBeforeCommit = &one
	case Fault5xxAfterCommit:
		fs.Error5xxAfterCommit = &one
	case FaultProcessing:
		fs.Processing = &pgsim.ProcessingFault{Rule: one, DelayMs: 50}
	case FaultRateLimit:
		fs.RateLimit429 = &pgsim.RateLimitFault{Rule: one, RetryAfterSeconds: 1}
	case FaultOutage:
		fs.Outage = &pgsim.OutageFault{}
	default:
		return ErrUnsupported
	}
	b.srv.SetFaults(fs)
	return nil
}

func (b *simBank) ClearFaults() error {
	b.srv.ClearFaults()
	return nil
}

func (b *simBank) Charges(orderID string) ([]BankCharge, error) {
	c, ok := b.srv.Charge(orderID)
	if !ok {
		return nil, nil
	}
	return []BankCharge{{OrderID: c.OrderID, PaymentKey: c.PaymentKey, Status: c.Status, Amount: c.Amount, Currency: c.Currency}}, nil
}

func (b *simBank) WebhookRequest(orderID string) (*http.Request, error) {
	body, err := b.srv.WebhookPayload(orderID)
	if err != nil {
		return nil, err
	}
	r := httptest.NewRequest(http.MethodPost, "/webhooks/sim", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r, nil
}
