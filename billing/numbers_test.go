package billing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/testdb"
)

// Two replicas finalize invoices at once while some finalizing transactions roll back after taking a
// number: the numbers that exist are exactly 1..N, each once, in the order the invoices committed.
func TestInvoiceNumbersAreGaplessAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := testenv.New(t)
	b := testenv.New(t, testenv.Options{DBURL: a.DBURL, SimURL: a.App.SimURL})
	plan := a.CreatePlan("9900", "KRW", "month", 1)

	const subs = 24
	customers := make([]string, subs)
	for i := range customers {
		customers[i] = a.Customer("ok")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*subs)
	for i, c := range customers {
		env := a
		if i%2 == 1 {
			env = b
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			res := env.Do("POST", "/v1/subscriptions", testenv.ServiceToken, map[string]any{"customer_id": c, "plan_id": plan})
			if res.Status != 201 {
				errs <- fmt.Errorf("subscribe %s: %d %s", c, res.Status, res.Body)
			}
		}()
		// A finalizer that takes a number and then fails: its number must go to the next invoice.
		go func() {
			defer wg.Done()
			tx, err := env.App.Pool.Begin(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if _, err := env.App.Billing.NextNumber(ctx, tx, billing.SeriesInvoice); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	rows, err := a.App.Pool.Query(ctx, `SELECT number FROM invoices WHERE status <> 'draft' ORDER BY finalized_at, number`)
	require.NoError(t, err)
	numbers, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	require.NoError(t, err)
	require.Len(t, numbers, subs)
	seen := map[string]bool{}
	for _, n := range numbers {
		require.NotNil(t, n)
		require.False(t, seen[*n], "number %s given twice", *n)
		seen[*n] = true
	}
	for i := 1; i <= subs; i++ {
		require.True(t, seen[fmt.Sprintf("INV-%06d", i)], "INV-%06d is missing: %v", i, seen)
	}
	require.Equal(t, subs, a.QueryInt(`SELECT last_number::int FROM document_number_counters WHERE prefix = 'INV'`))

	// The API shows the number; a renewal continues the sequence.
	inv := a.Do("GET", "/v1/invoices?customer_id="+customers[0], testenv.ServiceToken, nil).JSON(t)["data"].([]any)[0].(map[string]any)
	require.Regexp(t, `^INV-0000[0-9]{2}$`, inv["number"])
}

// A voided invoice keeps its number; the number of a finalized invoice cannot be changed, even by the
// schema's owner.
func TestInvoiceNumberIsKeptAndImmutable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t)
	plan := env.CreatePlan("9900", "KRW", "month", 1)
	c := env.Customer("insufficient")
	res := env.Subscribe(c, plan)
	require.Equal(t, 402, res.Status, string(res.Body))
	invID := res.JSON(t)["invoice_id"].(string)
	res = env.Do("POST", "/v1/support/invoices/"+invID+"/void", testenv.SupportToken, map[string]any{"reason": "test"})
	require.Equal(t, 200, res.Status, string(res.Body))
	inv := env.Do("GET", "/v1/invoices/"+invID, testenv.ServiceToken, nil).JSON(t)
	require.Equal(t, "void", inv["status"])
	require.Equal(t, "INV-000001", inv["number"])

	owner := testdb.Pool(t, env.OwnerURL)
	_, err := owner.Exec(ctx, `UPDATE invoices SET number = 'INV-999999' WHERE id = $1`, invID)
	require.ErrorContains(t, err, "keeps its number")
}
