package app

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/guard"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/gateway/stripe"
	"github.com/dunningworks/billing/gateway/toss"
	"github.com/dunningworks/billing/internal/config"
)

// Gateways are the enabled gateways by name.
type Gateways map[string]gateway.Gateway

// Get returns the named gateway.
func (g Gateways) Get(name string) (gateway.Gateway, bool) {
	gw, ok := g[name]
	return gw, ok
}

// buildGateways constructs the adapters of BILLING_GATEWAYS. "sim" is the toss adapter pointed at pgsim:
// BILLING_SIM_URL when given, else a simulator embedded in this process on a loopback port, so billingd
// runs with no gateway account and no second process.
func (a *App) buildGateways() (Gateways, error) {
	gws := Gateways{}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}}
	for _, name := range a.Config.Gateways {
		switch name {
		case "sim":
			if a.Config.Mode == config.ModeProduction {
				a.Log.Warn("production mode on the gateway simulator: charges move no money (BILLING_GATEWAYS names real gateways: toss, stripe)")
			}
			url := a.Config.SimURL
			if url == "" {
				// The embedded "bank" lives in domain time, like the code it serves: under the test clock its
				// approvals, cancels and transaction list carry test-clock times, so reconciliation windows agree.
				sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: a.Config.SimSecretKey.Reveal(), Logger: a.Log.With("component", "pgsim"),
					Clock: a.Clock.Now})
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return nil, fmt.Errorf("embedded pgsim: %w", err)
				}
				srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
				go func() { _ = srv.Serve(ln) }()
				a.closers = append(a.closers, func() { _ = srv.Close(); sim.Close() })
				url = "http://" + ln.Addr().String()
				a.Sim = sim
				a.Log.Info("embedded gateway simulator", "url", url)
			}
			a.SimURL = url
			// pgsim charges a few currencies besides KRW (an extension of the Toss wire format), so the
			// suite can exercise two-decimal amounts; real Toss is KRW only.
			gws[name] = toss.New(toss.Config{BaseURL: url, SecretKey: a.Config.SimSecretKey.Reveal(), Name: "sim",
				HTTPClient: client, Timeout: a.Config.GatewayTimeout, Currencies: pgsim.Currencies})
		case "toss":
			gws[name] = toss.New(toss.Config{BaseURL: a.Config.TossAPIURL, SecretKey: a.Config.TossSecretKey.Reveal(),
				Name: "toss", HTTPClient: client, Timeout: a.Config.GatewayTimeout})
		case "stripe":
			gw, err := stripe.New(stripe.Config{APIURL: a.Config.StripeAPIURL, SecretKey: a.Config.StripeSecretKey.Reveal(),
				WebhookSecret: a.Config.StripeWebhookKey.Reveal(), HTTPClient: client, Timeout: a.Config.GatewayTimeout})
			if err != nil {
				return nil, fmt.Errorf("stripe gateway: %w", err)
			}
			gws[name] = gw
		}
	}
	// Every gateway gets its own bulkhead, rate limit, breaker and timeout: trouble at one gateway is
	// reported to callers as "try later" and never spills into another's capacity.
	stateGauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "billing_gateway_circuit_open",
		Help: "1 while a gateway's circuit breaker is open (or half-open)."}, []string{"gateway"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_gateway_refused_total",
		Help: "Gateway calls refused before sending, by cause (circuit_open, rate_limited, bulkhead_full)."}, []string{"gateway", "method", "cause"})
	merchant := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "billing_gateway_merchant_refusals_total",
		Help: "Gateway calls the gateway refused for a merchant-side reason (our secret key, contract, request or currency), by gateway, method and the gateway's code. Only an operator can fix these."},
		[]string{"gateway", "method", "code"})
	a.Registry.MustRegister(stateGauge, refused, merchant)
	for name, gw := range gws {
		stateGauge.WithLabelValues(name).Set(0)
		gws[name] = guard.Wrap(gw, guard.Config{
			MaxConcurrent: a.Config.GatewayLimit,
			RatePerSecond: a.Config.GatewayRate,
			Burst:         a.Config.GatewayLimit,
			Timeout:       a.Config.GatewayTimeout,
			// The breaker runs on the wall clock (it protects a real gateway from real load).
			BreakerCooldown: a.Config.BreakerCooldown,
			OnStateChange: func(n gateway.Name, from, to string) {
				open := 0.0
				if to != guard.StateClosed {
					open = 1
				}
				stateGauge.WithLabelValues(string(n)).Set(open)
				a.Log.Warn("gateway circuit changed", "gateway", n, "from", from, "to", to)
			},
			OnRefused: func(n gateway.Name, method, cause string) { refused.WithLabelValues(string(n), method, cause).Inc() },
			OnMerchantRefusal: func(n gateway.Name, method, code string) {
				merchant.WithLabelValues(string(n), method, code).Inc()
				a.Log.Error("the gateway refused our side of a request: check the secret key, contract and configuration",
					"gateway", n, "method", method, "gateway_code", code)
			},
		})
	}
	return gws, nil
}
