package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
)

// world is what the run created.
type world struct {
	plans map[string]string // name -> id
	subs  []string
	// customers maps a subscription to its customer.
	customers map[string]string
	// upgrades maps a plan to a pricier plan of the same currency and interval.
	upgrades map[string]string
}

var planSpecs = []struct{ name, amount, currency, interval string }{
	{"krw-basic-monthly", "9900", "KRW", "month"},
	{"krw-pro-monthly", "19900", "KRW", "month"},
	{"usd-basic-monthly", "12.50", "USD", "month"},
	{"usd-pro-monthly", "29.00", "USD", "month"},
	{"usd-yearly", "99.00", "USD", "year"},
	{"krw-yearly", "99000", "KRW", "year"},
}

// behaviors is the card mix at sign-up: mostly good cards, a few that decline at once or a few times.
// Cards go bad (and get replaced) later, in cardsChange.
var behaviors = []struct {
	auth   string
	weight int
}{{"ok", 80}, {"insufficient", 4}, {"stolen", 2}, {"flaky-1", 7}, {"flaky-2", 7}}

// laterBehaviors are what a good card turns into.
var laterBehaviors = []string{"insufficient", "insufficient", "stolen", "expired", "flaky-2", "flaky-1"}

func pickBehavior(rnd *rand.Rand) string {
	n := rnd.IntN(100)
	for _, b := range behaviors {
		if n < b.weight {
			return b.auth
		}
		n -= b.weight
	}
	return "ok"
}

func seed(ctx context.Context, cfg Config, rnd *rand.Rand, admin, svc *client) (*world, error) {
	w := &world{plans: map[string]string{}, upgrades: map[string]string{}, customers: map[string]string{}}
	for _, p := range planSpecs {
		a, err := admin.do(ctx, "POST", "/v1/plans", fmt.Sprintf("chaos-%d-plan-%s", cfg.Seed, p.name), map[string]any{
			"code": fmt.Sprintf("%s-%d", p.name, cfg.Seed), "name": p.name, "amount": p.amount, "currency": p.currency,
			"interval": p.interval, "interval_count": 1})
		// 409 plan_code_taken: our own first request committed before its replica died (the key was
		// taken over and re-run, docs/idempotency.md); the answer names the plan it made.
		if err != nil || (a.Status != 201 && a.Status != 409) {
			return nil, fmt.Errorf("plan %s: %v %d %s", p.name, err, a.Status, a.Body)
		}
		var v struct {
			ID     string `json:"id"`
			PlanID string `json:"plan_id"`
		}
		_ = a.decode(&v)
		if a.Status == 409 {
			v.ID = v.PlanID
		}
		if v.ID == "" {
			return nil, fmt.Errorf("plan %s: %d %s", p.name, a.Status, a.Body)
		}
		w.plans[p.name] = v.ID
	}
	w.upgrades[w.plans["krw-basic-monthly"]] = w.plans["krw-pro-monthly"]
	w.upgrades[w.plans["usd-basic-monthly"]] = w.plans["usd-pro-monthly"]

	// The seeded draws are made in order, as before; the signups then run seedConcurrency at a time. A
	// signup whose replica is killed under it waits out its Idempotency-Key's lock (30 s) before a retry
	// can take it over, so one at a time spent most of a short run waiting on such locks; side by side
	// they wait together, and replicas are killed with several requests in flight.
	type draw struct{ auth, plan string }
	draws := make([]draw, cfg.Subs)
	for i := range draws {
		draws[i].auth = pickBehavior(rnd)
		draws[i].plan = planSpecs[rnd.IntN(len(planSpecs))].name
	}
	type signup struct {
		sub, customer string
		err           error
	}
	done := make([]signup, cfg.Subs)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(seedConcurrency, cfg.Subs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := &done[i]
				s.customer, s.sub, s.err = signUp(ctx, cfg, svc, w, i, draws[i].auth, draws[i].plan)
			}
		}()
	}
	for i := range cfg.Subs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, s := range done {
		if s.err != nil {
			return nil, s.err
		}
		w.subs = append(w.subs, s.sub)
		w.customers[s.sub] = s.customer
	}
	return w, nil
}

// seedConcurrency is how many signups the seeding runs at once.
const seedConcurrency = 8

// signUp makes the i-th customer, registers its card (behavior auth) and subscribes it to the plan.
func signUp(ctx context.Context, cfg Config, svc *client, w *world, i int, auth, plan string) (customer, sub string, err error) {
	key := fmt.Sprintf("chaos-%d-%d", cfg.Seed, i)
	a, err := svc.do(ctx, "POST", "/v1/customers", key+"-cus", map[string]any{
		"external_id": key, "email": key + "@example.com", "name": "Chaos " + key})
	var c struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"` // on 409 external_id_taken: our own first request got through
	}
	if err != nil || (a.Status != 201 && a.Status != 409) {
		return "", "", fmt.Errorf("customer %d: %v %d %s", i, err, a.Status, a.Body)
	}
	_ = a.decode(&c)
	if c.ID == "" {
		c.ID = c.CustomerID
	}
	if c.ID == "" {
		return "", "", fmt.Errorf("customer %d: %d %s", i, a.Status, a.Body)
	}
	// One Idempotency-Key per card, retried across kills and gateway 5xx (a 5xx is not stored on this
	// route, and a re-run after a kill answers with the key the first run stored).
	a, err = svc.do(ctx, "POST", "/v1/customers/"+c.ID+"/billing-keys", key+"-key", map[string]any{
		"gateway": "sim", "auth_key": auth + "-" + key, "customer_key": "ck-" + c.ID})
	if err != nil || a.Status != 201 {
		return "", "", fmt.Errorf("billing key %d: %v %d %s", i, err, a.Status, a.Body)
	}
	var s struct {
		ID             string `json:"id"`
		SubscriptionID string `json:"subscription_id"`
	}
	// One key for the whole signup, however many replicas die under it: the request is safe to run
	// again (its key is recorded with the subscription), so a retry answers about the one
	// subscription the first run opened. A 409 idempotency_key_interrupted here is a regression.
	a, err = svc.do(ctx, "POST", "/v1/subscriptions", key+"-sub", map[string]any{"customer_id": c.ID, "plan_id": w.plans[plan]})
	if err != nil || (a.Status != 201 && a.Status != 202 && a.Status != 402) {
		return "", "", fmt.Errorf("subscription %d: %v %d %s", i, err, a.Status, a.Body)
	}
	_ = a.decode(&s)
	if s.ID == "" {
		s.ID = s.SubscriptionID
	}
	return c.ID, s.ID, nil
}

// midlifeChanges upgrades, downgrades and cancels a few subscriptions, as customers do.
func midlifeChanges(ctx context.Context, rnd *rand.Rand, svc *client, w *world, day int) error {
	for i := 0; i < 1+len(w.subs)/40; i++ {
		sub := w.subs[rnd.IntN(len(w.subs))]
		a, err := svc.do(ctx, "GET", "/v1/subscriptions/"+sub, "", nil)
		if err != nil {
			return err
		}
		var s struct {
			Status string `json:"status"`
			PlanID string `json:"plan_id"`
		}
		_ = a.decode(&s)
		if s.Status != "active" {
			continue
		}
		key := fmt.Sprintf("chaos-change-%s-%d-%d", sub, day, i)
		switch rnd.IntN(3) {
		case 0:
			if up, ok := w.upgrades[s.PlanID]; ok {
				_, err = svc.do(ctx, "POST", "/v1/subscriptions/"+sub+"/change-plan", key, map[string]any{"plan_id": up})
			}
		case 1:
			_, err = svc.do(ctx, "POST", "/v1/subscriptions/"+sub+"/cancel", key, map[string]any{"at_period_end": true, "reason": "chaos: customer leaves"})
		default:
			_, err = svc.do(ctx, "POST", "/v1/subscriptions/"+sub+"/cancel", key, map[string]any{"at_period_end": false, "reason": "chaos: customer leaves now"})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setFaultPhase switches pgsim to a seeded random fault mix and names it.
func setFaultPhase(ctx context.Context, c *http.Client, addr string, rnd *rand.Rand) string {
	p := func() float64 { return []float64{0, 0.05, 0.15}[rnd.IntN(3)] }
	copies := rnd.IntN(4)
	faults := map[string]any{
		"commit_then_timeout":     map[string]any{"probability": p()},
		"error_5xx_before_commit": map[string]any{"probability": p()},
		"error_5xx_after_commit":  map[string]any{"probability": p()},
		"processing":              map[string]any{"probability": p(), "delay_ms": 30},
		"rate_limit_429":          map[string]any{"probability": p(), "retry_after_seconds": 1},
		"webhooks":                map[string]any{"copies": copies, "delay_ms": rnd.IntN(200), "reorder": rnd.IntN(2) == 0},
	}
	kind := fmt.Sprintf("mixed(webhooks x%d)", copies)
	if rnd.IntN(6) == 0 {
		faults["outage"] = map[string]any{"for_ms": 800 + rnd.IntN(1500)}
		kind = "outage+" + kind
	}
	body, _ := json.Marshal(faults)
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/__sim/faults", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
	}
	return kind
}

func clearFaults(ctx context.Context, c *http.Client, addr string) {
	req, _ := http.NewRequestWithContext(ctx, "DELETE", "http://"+addr+"/__sim/faults", nil)
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
	}
}

// cardsChange turns some customers' cards bad at the gateway (they will decline at the next charge), and
// has some delinquent customers register a new card (which heals).
func cardsChange(ctx context.Context, rnd *rand.Rand, c *http.Client, addr string, svc *client, w *world, day int) int {
	n := 0
	for i := 0; i < 1+len(w.subs)/8; i++ {
		sub := w.subs[rnd.IntN(len(w.subs))]
		cus := w.customers[sub]
		if rnd.IntN(3) == 0 {
			key := fmt.Sprintf("chaos-newcard-%s-%d-%d", cus, day, i)
			// A gateway fault answers 5xx: this customer tries again another day, with another card.
			if a, err := svc.send(ctx, "POST", "/v1/customers/"+cus+"/billing-keys", key, map[string]any{
				"gateway": "sim", "auth_key": "ok-" + key, "customer_key": "ck-" + cus}, false); err == nil && a.Status == 201 {
				n++
			}
			continue
		}
		body, _ := json.Marshal(map[string]string{"behavior": laterBehaviors[rnd.IntN(len(laterBehaviors))]})
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/__sim/customers/ck-"+cus+"/behavior", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if res, err := c.Do(req); err == nil {
			res.Body.Close()
			n++
		}
	}
	return n
}
