package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"time"
)

// WebhookResult is webhook receipt measured while billingd works through a billing day: the gateway
// answers a charge and announces it, so webhooks arrive exactly when the service is busiest.
type WebhookResult struct {
	Subscriptions int `json:"subscriptions"`
	// Receipt is the open-loop sender's POST /webhooks/sim (each request a new event), measured from its
	// scheduled time.
	Receipt LoadResult `json:"receipt"`
	// SimDelivered counts the simulator's own webhooks (one per charge) that billingd answered 200.
	SimDelivered int `json:"sim_webhooks_delivered"`
	// Inbox is the rows stored; Processed those processed by the end of the run; ProcessP50/P99 how long
	// a row waited between receipt and processing (seconds, wall clock).
	Inbox       int     `json:"inbox_rows"`
	Processed   int     `json:"inbox_processed"`
	ProcessP50  float64 `json:"receipt_to_processed_p50_seconds"`
	ProcessP99  float64 `json:"receipt_to_processed_p99_seconds"`
	Paid        int     `json:"renewals_paid_during_run"`
	RSSMiB      float64 `json:"billingd_peak_rss_mib"`
	SendSeconds float64 `json:"send_seconds"`
	// Server is billingd's own view of every receipt in the run (the simulator's included), from its
	// request-duration histogram: the time inside the handler, without the machine's queueing before
	// billingd reads the request.
	Server ServerLatency `json:"server_side"`
}

// ServerLatency is read from billing_http_request_duration_seconds: how many requests, and the smallest
// bucket bounds that hold half and 99% of them.
type ServerLatency struct {
	Requests int     `json:"requests"`
	P50LeMs  float64 `json:"p50_at_most_ms"`
	P99LeMs  float64 `json:"p99_at_most_ms"`
}

// webhookEvent is a payment-status event in the Toss wire format for an order no attempt of ours has:
// receiving it costs what receiving any event costs, and processing it is a cheap unknown_order.
func webhookEvent(i int, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":%q,"data":{"paymentKey":"bench_pay_%d",`+
		`"orderId":"bench-hook-%d","status":"DONE","totalAmount":9900,"balanceAmount":9900,"currency":"KRW",`+
		`"approvedAt":%q,"lastTransactionKey":"bench_tx_%d"}}`,
		at.Format("2006-01-02T15:04:05.000000"), i, i, at.Format(time.RFC3339), i))
}

// runWebhooks seeds n due subscriptions, starts billingd with the simulator announcing every charge to
// it, and sends webhooks open-loop while the renewals run: receipt must stay an insert and a 200 however
// busy the workers are.
func runWebhooks(ctx context.Context, e *env, n int) (WebhookResult, error) {
	r := WebhookResult{Subscriptions: n}
	const db = "bench_webhooks"
	pool, err := e.srv.migrated(ctx, db)
	if err != nil {
		return r, err
	}
	defer func() { pool.Close(); e.srv.drop(context.WithoutCancel(ctx), db) }()
	due := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	if err := seed(ctx, pool, seedSpec{N: n, Due: n, DueAt: due, Token: e.token, CustomerKey: e.customerKey, Ring: e.ring}, e.logf); err != nil {
		return r, err
	}
	if err := seedRenewJobs(ctx, pool, n, due, e.logf); err != nil {
		return r, err
	}
	e.sim.setLatency(0)
	bd, err := startBillingd(ctx, e.billingdBin, e.srv.url(db), e.sim.URL, e.encKeys, e.outDir, "webhooks")
	if err != nil {
		return r, err
	}
	defer bd.Stop()
	e.sim.SetWebhookURL(bd.URL + "/webhooks/sim")
	defer e.sim.SetWebhookURL("")
	delivered0 := len(e.sim.Webhooks())

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
	// The renewals need a moment to fill the queue and the pool; the sender starts into the busy phase.
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	pids, _ := backendPIDs(ctx, pool)
	meter := newCPUMeter(bd.PID(), pids)
	t0 := time.Now()
	e.logf("webhooks: POST /webhooks/sim at %.0f/s for %s during a %d-renewal billing day", e.mode.webhookRate, e.mode.webhookDuration, n)
	r.Receipt = openLoop(ctx, client, e.mode.webhookRate, e.mode.webhookDuration, func(i int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, bd.URL+"/webhooks/sim", bytes.NewReader(webhookEvent(i, time.Now())))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	r.Receipt.Endpoint = "POST /webhooks/sim"
	r.SendSeconds = time.Since(t0).Seconds()
	pids, _ = backendPIDs(ctx, pool)
	meter.observe(pids)
	r.Receipt.CPU = meter.split(r.SendSeconds, runtime.NumCPU())
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM invoices WHERE kind = 'renewal' AND status = 'paid'`).Scan(&r.Paid); err != nil {
		return r, err
	}
	// Let what was received be processed (webhooks are hints: a lag of seconds is fine, unbounded is not).
	deadline := time.Now().Add(e.mode.dayTimeout)
	for time.Now().Before(deadline) {
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL`).Scan(&left); err != nil {
			return r, err
		}
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	for _, d := range e.sim.Webhooks()[delivered0:] {
		if d.Delivered {
			r.SimDelivered++
		}
	}
	if sl, err := serverLatency(ctx, bd.URL, "POST", "/webhooks/{gateway}"); err == nil {
		r.Server = sl
	} else {
		e.logf("webhooks: billingd's metrics: %v", err)
	}
	_, hwm := procMemKiB(bd.PID())
	r.RSSMiB = float64(hwm) / 1024
	var p50, p99 *float64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(processed_at),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
		FROM webhook_inbox`).Scan(&r.Inbox, &r.Processed, &p50, &p99); err != nil {
		return r, err
	}
	if p50 != nil {
		r.ProcessP50, r.ProcessP99 = *p50, *p99
	}
	e.logf("webhooks: receipt p50 %.1f ms p99 %.1f ms max %.0f ms (%d errors); in billingd p50 <= %.1f ms, p99 <= %.1f ms of %d; %d inbox rows, %d processed (p99 %.2fs after receipt); %d paid meanwhile",
		r.Receipt.P50Ms, r.Receipt.P99Ms, r.Receipt.MaxMs, r.Receipt.Errors, r.Server.P50LeMs, r.Server.P99LeMs, r.Server.Requests, r.Inbox, r.Processed, r.ProcessP99, r.Paid)
	return r, nil
}

var (
	bucketLine = regexp.MustCompile(`^billing_http_request_duration_seconds_bucket\{(.*)\} (\S+)$`)
	bucketLe   = regexp.MustCompile(`le="([^"]+)"`)
)

// serverLatency reads one route's request-duration histogram from billingd's /metrics.
func serverLatency(ctx context.Context, base, method, route string) (ServerLatency, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return ServerLatency{}, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return ServerLatency{}, err
	}
	defer res.Body.Close()
	type bucket struct{ le, n float64 }
	var buckets []bucket
	want := fmt.Sprintf(`method=%q,route=%q`, method, route)
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := bucketLine.FindStringSubmatch(sc.Text())
		if m == nil || !bytes.Contains([]byte(m[1]), []byte(want)) {
			continue
		}
		le := bucketLe.FindStringSubmatch(m[1])
		n, err := strconv.ParseFloat(m[2], 64)
		if le == nil || err != nil {
			continue
		}
		bound := math.Inf(1)
		if le[1] != "+Inf" {
			if bound, err = strconv.ParseFloat(le[1], 64); err != nil {
				continue
			}
		}
		buckets = append(buckets, bucket{bound, n})
	}
	if err := sc.Err(); err != nil {
		return ServerLatency{}, err
	}
	if len(buckets) == 0 {
		return ServerLatency{}, fmt.Errorf("no histogram for %s %s", method, route)
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	total := buckets[len(buckets)-1].n
	out := ServerLatency{Requests: int(total)}
	// -1: beyond the largest finite bucket (JSON has no infinity).
	at := func(q float64) float64 {
		for _, b := range buckets {
			if b.n >= q*total {
				if math.IsInf(b.le, 1) {
					return -1
				}
				return 1000 * b.le
			}
		}
		return -1
	}
	out.P50LeMs, out.P99LeMs = at(0.5), at(0.99)
	return out, nil
}
