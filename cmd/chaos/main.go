// Command chaos runs billingd replicas and pgsim under seeded process kills and gateway faults for
// months of test-clock time, then checks that no customer was charged twice, no charge was forgotten and
// the ledger balances. It exits non-zero (with the seed to replay) on any violation.
//
//	go run ./cmd/chaos -seed 7 -subs 300 -months 3 -replicas 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dunningworks/billing/devtools/chaos"
)

func main() {
	seed := flag.Int64("seed", time.Now().UnixNano()%100000, "seed of the kill and fault schedule")
	subs := flag.Int("subs", 300, "subscriptions")
	months := flag.Int("months", 3, "months of test-clock time")
	replicas := flag.Int("replicas", 3, "billingd replicas (the second one is BILLING_ROLE=worker)")
	killEvery := flag.Duration("kill-every", 3*time.Second, "mean time between SIGKILLs")
	tags := flag.String("tags", "", "build billingd with these tags (e.g. chaos_break_resend, to see the suite fail)")
	keep := flag.Bool("keep", false, "keep the database")
	flag.Parse()
	server := os.Getenv("DATABASE_URL")
	if server == "" {
		fmt.Fprintln(os.Stderr, "chaos: DATABASE_URL is required (make chaos sets it)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, chaos.Config{Seed: *seed, Subs: *subs, Months: *months, Replicas: *replicas,
		KillEvery: *killEvery, ServerURL: server, Tags: *tags, Out: os.Stderr, Keep: *keep})
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: seed %d: %v\n", *seed, err)
		os.Exit(1)
	}
	rep.Print(os.Stdout)
	if rep.Failed() {
		os.Exit(1)
	}
}
