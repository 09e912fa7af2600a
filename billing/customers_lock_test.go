package billing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/testdb"
)

// The customer lock billingkey takes is billing's query: it finds the row, and a customer that does not
// exist is 404, never a silent no-op. A table test: a rolled-back transaction, no app.
func TestLockCustomerAndRequireCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := testdb.Tx(t)
	id := ids.New("cus")
	_, err := tx.Exec(ctx, `INSERT INTO customers (id, external_id, email, name, created_at) VALUES ($1, $1, 'a@example.com', 'A', now())`, id)
	require.NoError(t, err)

	require.NoError(t, billing.RequireCustomer(ctx, tx, id))
	require.NoError(t, billing.LockCustomer(ctx, tx, id))

	missing := ids.New("cus")
	err = billing.RequireCustomer(ctx, tx, missing)
	require.True(t, apperr.IsKind(err, apperr.KindNotFound), "%v", err)
	err = billing.LockCustomer(ctx, tx, missing)
	require.True(t, apperr.IsKind(err, apperr.KindNotFound), "%v", err)
}
