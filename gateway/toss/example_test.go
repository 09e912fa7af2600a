package toss_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/shopspring/decimal"

	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/gateway/pgsim"
	"github.com/dunningworks/billing/gateway/toss"
)

// The adapter pointed at an in-process pgsim: issue a billing key, charge it, and see a lost answer
// turn into Unknown that a Lookup resolves.
func Example() {
	sim := pgsim.New(pgsim.Options{Seed: 1, SecretKey: "test_sk_sim"})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()

	g := toss.New(toss.Config{BaseURL: srv.URL, SecretKey: "test_sk_sim", Name: "sim"})
	ctx := context.Background()
	key, err := g.IssueBillingKey(ctx, "customer-1", "ok-1")
	if err != nil {
		panic(err)
	}
	req := gateway.ChargeRequest{BillingKey: key.Token, CustomerKey: "customer-1", OrderID: "order-000001",
		IdempotencyKey: "attempt-000001", Amount: decimal.NewFromInt(9900), Currency: "KRW", OrderName: "Pro"}

	sim.SetFaults(pgsim.Faults{ChargeFaults: pgsim.ChargeFaults{CommitThenTimeout: &pgsim.CommitThenTimeoutFault{Rule: pgsim.Rule{Count: 1}}}})
	out, _ := g.Charge(ctx, req)
	fmt.Println("charge:", out.Kind)
	found, _ := g.Lookup(ctx, req.OrderID)
	fmt.Println("lookup:", found.Kind, found.Amount)
	fmt.Println("charges at the bank:", len(sim.Charges()))
	// Output:
	// charge: unknown
	// lookup: succeeded 9900
	// charges at the bank: 1
}
