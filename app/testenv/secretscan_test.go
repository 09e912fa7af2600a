package testenv_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// The scan must find a planted secret in each form it claims to catch, or AssertNoSecretInDB proves nothing.
func TestFindSecretInDBFindsPlantedSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	const secret = "billing_key_RAW_s3cr3t"

	scan, err := testenv.FindSecretInDB(ctx, pool, secret)
	require.NoError(t, err)
	require.Empty(t, scan.Found)
	require.Greater(t, scan.Columns, 50, "every column of the schema, River's included")

	_, err = pool.Exec(ctx, `INSERT INTO customers (id, external_id, email, name, created_at)
		VALUES ('cus_1', 'e1', 'a@b.co', 'n', now())`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO billing_keys (id, customer_id, gateway, customer_key, ciphertext, key_version, created_at)
		VALUES ('bk_1', 'cus_1', 'sim', 'ck', convert_to($1, 'UTF8'), 1, now())`, "prefix-"+secret+"-suffix")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, state, queue, priority, scheduled_at)
		VALUES (jsonb_build_object('token', encode(convert_to($1, 'UTF8'), 'base64')), 'k', 1, 'available', 'default', 1, now())`, secret)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE customers SET name = upper($1) WHERE id = 'cus_1'`, secret)
	require.NoError(t, err)

	scan, err = testenv.FindSecretInDB(ctx, pool, secret)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"public.billing_keys.ciphertext (1 rows)",
		"public.river_job.args (1 rows)",
		"public.customers.name (1 rows)",
	}, scan.Found)
}
