package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// A revoked key stops authenticating at once on every replica: both check revoked_at on every request.
// The revocation is an admin's, audited, idempotent, and answers problem+json for what it refuses.
func TestRevokedAPIKeyStopsAuthenticatingOnEveryReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := testenv.New(t)
	two := testenv.New(t, testenv.Options{DBURL: one.DBURL, SimURL: one.App.SimURL})
	key, err := api.CreateAPIKey(ctx, testdb.Pool(t, one.DBURL), api.RoleSupport, "night shift", time.Now())
	require.NoError(t, err)
	other, err := api.CreateAPIKey(ctx, testdb.Pool(t, one.DBURL), api.RoleSupport, "day shift", time.Now())
	require.NoError(t, err)
	for _, env := range []*testenv.Env{one, two} {
		require.Equal(t, 200, env.Do("GET", "/v1/support/delinquent", key.Token, nil).Status)
	}

	path := "/v1/api-keys/" + key.ID + "/revoke"
	for _, bad := range []struct {
		token string
		path  string
		body  any
		want  int
		code  string
	}{
		{testenv.SupportToken, path, map[string]any{"reason": "x"}, 403, "forbidden"},
		{testenv.ServiceToken, path, map[string]any{"reason": "x"}, 403, "forbidden"},
		{testenv.AdminToken, path, map[string]any{}, 422, "validation_failed"},
		{testenv.AdminToken, path, map[string]any{"reason": "x", "extra": 1}, 400, ""},
		{testenv.AdminToken, "/v1/api-keys/key_nobody/revoke", map[string]any{"reason": "x"}, 404, "api_key_not_found"},
		{testenv.AdminToken, "/v1/api-keys/bootstrap:admin:abcd1234/revoke", map[string]any{"reason": "x"}, 422, "bootstrap_key"},
	} {
		res := one.Do("POST", bad.path, bad.token, bad.body)
		require.Equal(t, bad.want, res.Status, "%s %v: %s", bad.path, bad.body, res.Body)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		if bad.code != "" {
			require.Equal(t, bad.code, res.JSON(t)["code"], string(res.Body))
		}
	}
	require.Equal(t, 200, two.Do("GET", "/v1/support/delinquent", key.Token, nil).Status, "a refused revocation changes nothing")

	res := one.Do("POST", path, testenv.AdminToken, map[string]any{"reason": "laptop stolen"}, "Idempotency-Key: revoke-1", "X-Request-Id: req-revoke")
	require.Equal(t, 200, res.Status, string(res.Body))
	revoked := res.JSON(t)
	require.Equal(t, key.ID, revoked["id"])
	require.Equal(t, "support", revoked["role"])
	require.NotNil(t, revoked["revoked_at"])
	require.NotContains(t, string(res.Body), key.Token)

	for _, env := range []*testenv.Env{one, two} {
		res := env.Do("GET", "/v1/support/delinquent", key.Token, nil)
		require.Equal(t, 401, res.Status, "revoked on this replica too: %s", res.Body)
		require.Equal(t, "invalid_token", res.JSON(t)["code"])
		require.Equal(t, 200, env.Do("GET", "/v1/support/delinquent", other.Token, nil).Status, "other keys go on")
	}

	// A replay answers the first result; a new request finds it revoked already and changes nothing.
	replay := one.Do("POST", path, testenv.AdminToken, map[string]any{"reason": "laptop stolen"}, "Idempotency-Key: revoke-1")
	require.Equal(t, 200, replay.Status)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	again := two.Do("POST", path, testenv.AdminToken, map[string]any{"reason": "again"})
	require.Equal(t, 200, again.Status)
	require.Equal(t, revoked["revoked_at"], again.JSON(t)["revoked_at"])

	audit := one.Do("GET", "/v1/support/audit?target_id="+key.ID, testenv.AdminToken, nil)
	require.Equal(t, 200, audit.Status)
	rows := audit.JSON(t)["data"].([]any)
	require.Len(t, rows, 1, "one audit row: the repeat changed nothing")
	row := rows[0].(map[string]any)
	require.Equal(t, "api-key.revoke", row["action"])
	require.Equal(t, "laptop stolen", row["reason"])
	require.Equal(t, "admin", row["role"])
	require.Equal(t, "req-revoke", row["request_id"])
	require.Nil(t, row["before"].(map[string]any)["revoked_at"])
	require.NotNil(t, row["after"].(map[string]any)["revoked_at"])

	list := one.Do("GET", "/v1/api-keys?limit=1", testenv.AdminToken, nil)
	require.Equal(t, 200, list.Status, string(list.Body))
	first := list.JSON(t)
	require.Len(t, first["data"], 1)
	require.Equal(t, key.ID, first["data"].([]any)[0].(map[string]any)["id"])
	require.NotNil(t, first["next_cursor"])
	next := one.Do("GET", "/v1/api-keys?limit=1&cursor="+first["next_cursor"].(string), testenv.AdminToken, nil)
	require.Equal(t, other.ID, next.JSON(t)["data"].([]any)[0].(map[string]any)["id"])
	require.Equal(t, 403, one.Do("GET", "/v1/api-keys", testenv.SupportToken, nil).Status)
}
