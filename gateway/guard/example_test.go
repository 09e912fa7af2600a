package guard_test

import (
	"log"
	"time"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/guard"
	"github.com/dunningworks/billing/gateway/stripe"
)

// Protect the Stripe adapter: at most 8 calls in flight, 20 calls a second, 10 s per call, and the
// circuit opens after 5 consecutive unknown outcomes for 30 s.
func ExampleWrap() {
	adapter, err := stripe.New(stripe.Config{SecretKey: "sk_test_...", WebhookSecret: "whsec_..."})
	if err != nil {
		log.Fatal(err)
	}
	var gw gateway.Gateway = guard.Wrap(adapter, guard.Config{
		MaxConcurrent:   8,
		RatePerSecond:   20,
		Burst:           20,
		Timeout:         10 * time.Second,
		BreakerFailures: 5,
		BreakerCooldown: 30 * time.Second,
		OnStateChange: func(name gateway.Name, from, to string) {
			log.Printf("gateway %s circuit %s -> %s", name, from, to)
		},
	})
	_ = gw
}
