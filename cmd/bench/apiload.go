package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"
)

// LoadResult is one open-loop run against one endpoint.
type LoadResult struct {
	Endpoint string  `json:"endpoint"`
	Rate     float64 `json:"rate_per_second"`
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	// Achieved is completed requests over the run's wall time: below Rate when the server fell behind.
	Achieved float64 `json:"achieved_per_second"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// FirstErr is a sample of what went wrong, if anything did.
	FirstErr string `json:"first_error,omitempty"`
	// CPU is where the machine's CPU went during the run: a latency tail on a shared machine is mostly
	// time spent waiting for a CPU.
	CPU CPUSplit `json:"cpu"`
}

// APIResult is the API under a fixed load, billingd otherwise idle (nothing due).
type APIResult struct {
	Subscriptions int        `json:"subscriptions"`
	Get           LoadResult `json:"get_subscription"`
	ChangePlan    LoadResult `json:"change_plan"`
	RSSMiB        float64    `json:"billingd_peak_rss_mib"`
}

// openLoop sends rate requests per second for d, each at its scheduled time whether or not earlier ones
// have answered, and measures each from its scheduled time: a stall shows up in the latency of every
// request it delays (no coordinated omission).
func openLoop(ctx context.Context, client *http.Client, rate float64, d time.Duration, req func(i int) (*http.Request, error)) LoadResult {
	n := int(rate * d.Seconds())
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			select {
			case <-ctx.Done():
				n = i
			case <-time.After(w):
			}
		}
		if ctx.Err() != nil {
			n = i
			break
		}
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			r, err := req(i)
			if err != nil {
				errs[i] = err
				return
			}
			res, err := client.Do(r.WithContext(ctx))
			if err != nil {
				errs[i] = err
				lat[i] = time.Since(at)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			lat[i] = time.Since(at)
			if res.StatusCode >= 300 {
				errs[i] = fmt.Errorf("%s %s: status %d", r.Method, r.URL.Path, res.StatusCode)
			}
		}(i, at)
	}
	wg.Wait()
	wall := time.Since(start)
	out := LoadResult{Rate: rate, Seconds: wall.Seconds(), Requests: n}
	for _, err := range errs[:n] {
		if err != nil {
			out.Errors++
			if out.FirstErr == "" {
				out.FirstErr = err.Error()
			}
		}
	}
	l := slices.Clone(lat[:n])
	slices.Sort(l)
	if len(l) > 0 {
		out.P50Ms = ms(l[len(l)*50/100])
		out.P90Ms = ms(l[len(l)*90/100])
		out.P99Ms = ms(l[min(len(l)-1, len(l)*99/100)])
		out.MaxMs = ms(l[len(l)-1])
	}
	out.Achieved = float64(n-out.Errors) / wall.Seconds()
	return out
}

func runAPILoad(ctx context.Context, e *env, n int) (APIResult, error) {
	r := APIResult{Subscriptions: n}
	const db = "bench_api"
	pool, err := e.srv.migrated(ctx, db)
	if err != nil {
		return r, err
	}
	defer func() { pool.Close(); e.srv.drop(context.WithoutCancel(ctx), db) }()
	// Nothing due: the API is measured on an otherwise idle service.
	if err := seed(ctx, pool, seedSpec{N: n, Due: 0, DueAt: time.Now(), Token: e.token, CustomerKey: e.customerKey, Ring: e.ring}, e.logf); err != nil {
		return r, err
	}
	e.sim.setLatency(0)
	var bd *billingd
	if e.cpuProfile != "" {
		bd, err = startInProc(ctx, e.srv.url(db), e.sim.URL, e.encKeys, e.cpuProfile+".api")
	} else {
		bd, err = startBillingd(ctx, e.billingdBin, e.srv.url(db), e.sim.URL, e.encKeys, e.outDir, "api")
	}
	if err != nil {
		return r, err
	}
	defer bd.Stop()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}
	auth := "Bearer " + bd.Token

	// A short warm-up at the same rate fills the connection pools on both sides.
	get := func(i int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, bd.URL+"/v1/subscriptions/"+subID(1+rand.IntN(n)), nil)
		if err == nil {
			req.Header.Set("Authorization", auth)
		}
		return req, err
	}
	e.logf("api: warm-up")
	openLoop(ctx, client, e.mode.getRate, 2*time.Second, get)
	metered := func(f func() LoadResult) LoadResult {
		pids, _ := backendPIDs(ctx, pool)
		meter := newCPUMeter(bd.PID(), pids)
		t := time.Now()
		res := f()
		pids, _ = backendPIDs(ctx, pool)
		meter.observe(pids)
		res.CPU = meter.split(time.Since(t).Seconds(), runtime.NumCPU())
		return res
	}
	e.logf("api: GET /v1/subscriptions/{id} at %.0f/s for %s", e.mode.getRate, e.mode.apiDuration)
	r.Get = metered(func() LoadResult { return openLoop(ctx, client, e.mode.getRate, e.mode.apiDuration, get) })
	r.Get.Endpoint = "GET /v1/subscriptions/{id}"

	// Each change is a different subscription moving up to pro at once: the proration is invoiced and
	// charged at the simulator (0 ms) before the answer, as a customer clicking "upgrade" would see it.
	body := []byte(`{"plan_id":"` + planPro + `","timing":"immediate","proration":"create_prorations"}`)
	change := func(i int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, bd.URL+"/v1/subscriptions/"+subID(n-i)+"/change-plan", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-change-%d", i))
		}
		return req, err
	}
	e.logf("api: POST change-plan at %.0f/s for %s", e.mode.changeRate, e.mode.apiDuration)
	r.ChangePlan = metered(func() LoadResult { return openLoop(ctx, client, e.mode.changeRate, e.mode.apiDuration, change) })
	r.ChangePlan.Endpoint = "POST /v1/subscriptions/{id}/change-plan"
	_, hwm := procMemKiB(bd.PID())
	r.RSSMiB = float64(hwm) / 1024
	e.logf("api: GET p50 %.1f ms p99 %.1f ms (%d errors); change-plan p50 %.1f ms p99 %.1f ms (%d errors)",
		r.Get.P50Ms, r.Get.P99Ms, r.Get.Errors, r.ChangePlan.P50Ms, r.ChangePlan.P99Ms, r.ChangePlan.Errors)
	return r, nil
}
