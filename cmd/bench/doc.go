// Command bench is the billing-day benchmark (issue 9): it measures billingd against the machine's own
// limits, in one run, so every figure can be read as a ratio to what this machine can do at all.
//
//	go run ./cmd/bench -mode quick   # make bench:      10k-subscription billing day, 100k-row sweep
//	go run ./cmd/bench -mode full    # make bench-full: 1M-subscription billing day, 1M-row sweep
//
// It runs, in order: the baselines (pgbench TPC-B-like TPS, installing pgbench from Debian when it is
// missing and we are root; River's throughput on no-op jobs with billingd's own client settings), the
// billing day at 0 ms and at 250 ms of added gateway latency (billingd as a subprocess, so its RSS is its
// own, against pgsim on loopback HTTP), the sweeper's cost with 1k due among many, and API latency under an
// open-loop load (a fixed arrival rate, so a slow answer cannot hold back the requests behind it and hide
// its own latency: coordinated omission).
//
// Every scenario gets a scratch database created and dropped on the server in DATABASE_URL; the database
// named there is never written. The table goes to stdout and the JSON to bench/out/<timestamp>.json and
// bench/out/latest.json. docs/performance.md explains each figure and what limits it.
package main
