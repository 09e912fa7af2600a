package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/testdb"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func entry(target, actor string) audit.Entry {
	return audit.Entry{Actor: actor, Role: "support", Action: "invoice.write_off", TargetType: "invoice", TargetID: target,
		Reason: "  ticket 42  ", Before: map[string]any{"status": "open"}, After: map[string]any{"status": "uncollectible"},
		RequestID: "req_1", Origin: audit.OriginAPI, At: at}
}

func TestWriteStoresEveryFieldAndReadsItBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.Tx(t) // a rolled-back transaction: these need the table, not a database of their own
	rec, err := audit.Write(ctx, pool, entry("inv_1", "key_a"))
	require.NoError(t, err)
	require.Regexp(t, `^aud_\d+$`, rec.ID)
	require.Equal(t, "ticket 42", rec.Reason, "the reason is trimmed")

	list, err := audit.List(ctx, pool, audit.Filter{TargetID: "inv_1"}, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	got := list.Data[0]
	require.Equal(t, rec, got)
	require.Equal(t, audit.Target{Type: "invoice", ID: "inv_1"}, got.Target)
	require.Equal(t, "key_a", got.Actor)
	require.Equal(t, "support", got.Role)
	require.Equal(t, "req_1", got.RequestID)
	require.Equal(t, "api", got.Origin)
	require.True(t, at.Equal(got.At))
	require.JSONEq(t, `{"status":"open"}`, string(got.Before))
	require.JSONEq(t, `{"status":"uncollectible"}`, string(got.After))
	require.Nil(t, list.NextCursor)
}

func TestWriteRefusesAMissingReason(t *testing.T) {
	t.Parallel()
	pool := testdb.Tx(t)
	for _, reason := range []string{"", "   ", strings.Repeat("x", audit.MaxReason+1)} {
		e := entry("inv_1", "key_a")
		e.Reason = reason
		_, err := audit.Write(context.Background(), pool, e)
		require.True(t, apperr.IsKind(err, apperr.KindValidation), "%q: %v", reason, err)
	}
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log`).Scan(&n))
	require.Zero(t, n)
}

// The row is written in the caller's transaction: a rolled-back change leaves no audit row behind.
func TestWriteIsPartOfTheCallersTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	boom := errors.New("the change failed")
	err := dbx.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := audit.Write(ctx, tx, entry("inv_rolled_back", "key_a")); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	list, err := audit.List(ctx, pool, audit.Filter{TargetID: "inv_rolled_back"}, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, list.Data)
}

// Rows cannot be changed after the fact, not even through the service's own connection (its role has no
// such privilege), nor through the schema owner's (the triggers refuse).
func TestRowsCannotBeUpdatedOrDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.Create(t)
	pool, owner := testdb.Pool(t, db.URL), testdb.Pool(t, db.OwnerURL)
	_, err := audit.Write(ctx, pool, entry("inv_1", "key_a"))
	require.NoError(t, err)
	for _, stmt := range []string{
		`UPDATE audit_log SET reason = 'nothing to see'`,
		`UPDATE audit_log SET after = NULL`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.ErrorContains(t, err, "permission denied for table audit_log", stmt)
		_, err = owner.Exec(ctx, stmt)
		require.ErrorContains(t, err, "append-only", stmt)
	}
	list, err := audit.List(ctx, pool, audit.Filter{}, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	require.Equal(t, "ticket 42", list.Data[0].Reason)
}

func TestListFiltersAndPagesOldestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.Tx(t)
	for i := range 5 {
		_, err := audit.Write(ctx, pool, entry(fmt.Sprintf("inv_%d", i%2), fmt.Sprintf("key_%d", i%3)))
		require.NoError(t, err)
	}
	ids := func(l page.List[audit.Record]) (out []string) {
		for _, r := range l.Data {
			out = append(out, r.Target.ID+"/"+r.Actor)
		}
		return out
	}
	l, err := audit.List(ctx, pool, audit.Filter{TargetID: "inv_0"}, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"inv_0/key_0", "inv_0/key_2", "inv_0/key_1"}, ids(l))

	l, err = audit.List(ctx, pool, audit.Filter{Actor: "key_1"}, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"inv_1/key_1", "inv_0/key_1"}, ids(l))

	l, err = audit.List(ctx, pool, audit.Filter{TargetID: "inv_0", Actor: "key_2"}, page.Request{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"inv_0/key_2"}, ids(l))

	// Two per page through all five, following next_cursor.
	var all []string
	req := page.Request{Limit: 2}
	for {
		l, err := audit.List(ctx, pool, audit.Filter{}, req)
		require.NoError(t, err)
		all = append(all, ids(l)...)
		if l.NextCursor == nil {
			break
		}
		req, err = page.Parse(map[string][]string{"limit": {"2"}, "cursor": {*l.NextCursor}})
		require.NoError(t, err)
	}
	require.Len(t, all, 5)
	require.Equal(t, "inv_0/key_0", all[0])
	require.Equal(t, "inv_0/key_1", all[4])
}

func TestSnapshotsMayBeNullOrRawJSON(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.Tx(t)
	e := entry("sub_1", "key_a")
	e.Before, e.After = nil, json.RawMessage(`{"dunning_paused":true}`)
	rec, err := audit.Write(ctx, pool, e)
	require.NoError(t, err)
	raw, err := json.Marshal(rec)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"before":null`)
	require.Contains(t, string(raw), `"after":{"dunning_paused":true}`)
}
