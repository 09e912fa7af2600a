package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/jobs"
)

// Seeded plan ids. Both are monthly KRW plans on the sim gateway; pro is the change-plan target.
const (
	planBasic = "plan_benchbasic"
	planPro   = "plan_benchpro"
)

// seedSpec says what to put in a scratch database.
type seedSpec struct {
	N int // subscriptions (one customer and one billing key each)
	// Due of them have next_renewal_at = DueAt, spread evenly over the table (every N/Due-th row), so a
	// scan for them cannot get lucky with locality; the others renew over the coming month.
	Due   int
	DueAt time.Time
	// Token is a billing key issued by the simulator; every row stores it, sealed for that row.
	Token       string
	CustomerKey string
	Ring        *keyring.Ring
}

func cusID(i int) string { return fmt.Sprintf("cus_bench%010d", i) }
func keyID(i int) string { return fmt.Sprintf("bk_bench%010d", i) }
func subID(i int) string { return fmt.Sprintf("sub_bench%010d", i) }

// seed writes plans, customers, billing keys and subscriptions with set-based SQL and COPY: a million rows
// in about a minute, where the REST API would take hours, and nothing a renewal reads is left out.
func seed(ctx context.Context, pool *pgxpool.Pool, s seedSpec, logf func(string, ...any)) error {
	start := time.Now()
	now := time.Now().UTC()
	if _, err := pool.Exec(ctx, `INSERT INTO plans (id, code, name, amount, currency, interval, interval_count, gateway, created_at)
		VALUES ($1, 'bench-basic', 'Bench Basic', 9900, 'KRW', 'month', 1, 'sim', $3),
		       ($2, 'bench-pro', 'Bench Pro', 19900, 'KRW', 'month', 1, 'sim', $3)`, planBasic, planPro, now); err != nil {
		return fmt.Errorf("seed plans: %w", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO customers (id, external_id, email, name, created_at)
		SELECT 'cus_bench' || lpad(i::text, 10, '0'), 'bench-' || i, 'c' || i || '@example.com', 'Customer ' || i, $2
		FROM generate_series(1, $1) AS i`, s.N, now); err != nil {
		return fmt.Errorf("seed customers: %w", err)
	}
	logf("seed: %d customers (%s)", s.N, time.Since(start).Round(time.Millisecond))

	// Each row's ciphertext is bound to (key id, customer id) by the vault's AAD, so each is sealed on
	// its own: a copied ciphertext would not decrypt, which is the point of the binding.
	i := 0
	var sealErr error
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= s.N {
			return nil, nil
		}
		i++
		ct, ver, err := s.Ring.Seal([]byte(s.Token), "billing_key", keyID(i), cusID(i))
		if err != nil {
			sealErr = err
			return nil, err
		}
		return []any{keyID(i), cusID(i), "sim", s.CustomerKey, ct, int32(ver), "BC", "433012******123*", "active", true, now}, nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"billing_keys"},
		[]string{"id", "customer_id", "gateway", "customer_key", "ciphertext", "key_version", "card_brand", "masked_number", "status", "is_default", "created_at"},
		rows); err != nil {
		if sealErr != nil {
			err = sealErr
		}
		return fmt.Errorf("seed billing keys: %w", err)
	}
	logf("seed: %d billing keys (%s)", s.N, time.Since(start).Round(time.Millisecond))

	every := 1
	if s.Due > 0 && s.Due < s.N {
		every = s.N / s.Due
	}
	// Due rows: the period ends at DueAt. The others: their period ends somewhere in the next 30 days.
	if _, err := pool.Exec(ctx, `INSERT INTO subscriptions (id, customer_id, plan_id, quantity, status, billing_anchor,
			current_period_start, current_period_end, next_renewal_at, created_at, updated_at)
		SELECT 'sub_bench' || lpad(i::text, 10, '0'), 'cus_bench' || lpad(i::text, 10, '0'), $2, 1, 'active',
			e - interval '1 month', e - interval '1 month', e, e, e - interval '1 month', e - interval '1 month'
		FROM (SELECT i, CASE WHEN i % $4 = 0 AND i / $4 <= $5 THEN $3::timestamptz
		                     ELSE $3::timestamptz + interval '1 hour' + (i % 43200) * interval '1 minute' END AS e
		      FROM generate_series(1, $1) AS i) AS g`, s.N, planBasic, s.DueAt, every, s.Due); err != nil {
		return fmt.Errorf("seed subscriptions: %w", err)
	}
	logf("seed: %d subscriptions, %d due (%s)", s.N, s.Due, time.Since(start).Round(time.Millisecond))
	// Statistics as autovacuum would have them on a table this size, so the planner sees the real table.
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE customers, billing_keys, plans, subscriptions`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	var due int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE next_renewal_at <= $1`, s.DueAt).Scan(&due); err != nil {
		return err
	}
	if due != s.Due {
		return fmt.Errorf("seed: %d subscriptions due, want %d", due, s.Due)
	}
	logf("seed: done in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

// seedRenewJobs inserts the River job each due subscription's previous renewal would have scheduled for
// DueAt (jobs.Scheduler inserts Work{renew, id, period end} in the renewal's transaction), with billingd's
// own job arguments and uniqueness, so billingd finds exactly the queue it would have on billing day.
func seedRenewJobs(ctx context.Context, pool *pgxpool.Pool, n int, dueAt time.Time, logf func(string, ...any)) error {
	start := time.Now()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: quietLogger()})
	if err != nil {
		return err
	}
	const batch = 10_000
	for i := 1; i <= n; i += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for j := i; j < min(i+batch, n+1); j++ {
			params = append(params, river.InsertManyParams{Args: jobs.RenewArgs{ID: subID(j), Due: dueAt.UTC()}})
		}
		if _, err := client.InsertManyFast(ctx, params); err != nil {
			return fmt.Errorf("seed renew jobs: %w", err)
		}
	}
	logf("seed: %d renew jobs (%s)", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkSeededKey decrypts one seeded row through the vault itself, so a seed that billingd could not
// charge fails here, before a run that would only measure declines.
func checkSeededKey(ctx context.Context, pool *pgxpool.Pool, ring *keyring.Ring, token string) error {
	v := billingkey.New(billingkey.Config{Pool: pool, Clock: clock.System{}, KeyRing: ring, Log: quietLogger()})
	got, _, err := v.Token(ctx, pool, keyID(1))
	if err != nil {
		return fmt.Errorf("seeded billing key does not open through the vault: %w", err)
	}
	if got.Reveal() != token {
		return fmt.Errorf("seeded billing key opens to a different token")
	}
	return nil
}
