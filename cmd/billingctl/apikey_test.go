package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// `billingctl apikey revoke` takes a key back at once and is audited as the operator, from the CLI.
func TestAPIKeyRevokeFromTheCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := testenv.New(t)
	pool := testdb.Pool(t, env.DBURL)
	key, err := api.CreateAPIKey(ctx, pool, api.RoleService, "backend", time.Now())
	require.NoError(t, err)
	require.Equal(t, 200, env.Do("GET", "/v1/plans", key.Token, nil).Status)
	c := cli{getenv: func(string) string { return "" }}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		c.out = &out
		err := apiKeyCommand(ctx, c, pool, args)
		return out.String(), err
	}

	out, err := run("list")
	require.NoError(t, err)
	require.Contains(t, out, key.ID)
	require.Contains(t, out, "backend")
	require.NotContains(t, out, key.Token)

	_, err = run("revoke", key.ID)
	require.ErrorContains(t, err, "reason", "a revocation says why")
	_, err = run("revoke", "--reason", "rotated", "key_nobody")
	require.ErrorContains(t, err, "not found")
	require.Equal(t, 200, env.Do("GET", "/v1/plans", key.Token, nil).Status)

	out, err = run("revoke", "--reason", "rotated after the leak", key.ID)
	require.NoError(t, err)
	require.Contains(t, out, "revoked "+key.ID)
	require.Equal(t, 401, env.Do("GET", "/v1/plans", key.Token, nil).Status)
	out, err = run("list")
	require.NoError(t, err)
	require.NotContains(t, out, "-\n", "the list shows when it was revoked")

	res := env.Do("GET", "/v1/support/audit?target_id="+key.ID, testenv.AdminToken, nil)
	require.Equal(t, 200, res.Status)
	rows := res.JSON(t)["data"].([]any)
	require.Len(t, rows, 1)
	row := rows[0].(map[string]any)
	require.Equal(t, "api-key.revoke", row["action"])
	require.Equal(t, "cli", row["origin"])
	require.Regexp(t, `^billingctl:`, row["actor"])
	require.Equal(t, "rotated after the leak", row["reason"])
}
