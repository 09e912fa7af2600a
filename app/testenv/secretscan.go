package testenv

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/dbx"
)

// AssertNoSecretInDB fails t if secret appears anywhere in the database: in any column of any table of
// every non-system schema (River's job args included), as text, as raw bytes in a bytea, or hex- or
// base64-encoded. It is the test of ARCHITECTURE.md's "secrets never leak" for storage: whatever flow ran
// before it, the raw billing key must only exist as ciphertext.
func AssertNoSecretInDB(t testing.TB, db dbx.DBTX, secret string) {
	t.Helper()
	require.GreaterOrEqual(t, len(secret), 6, "a secret this short would match by accident")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scan, err := FindSecretInDB(ctx, db, secret)
	require.NoError(t, err)
	require.NotZero(t, scan.Columns, "the scan read no columns")
	require.Empty(t, scan.Found, "the secret is stored in plain sight")
}

// SecretScan is what FindSecretInDB looked at and where it found the secret ("schema.table.column").
type SecretScan struct {
	Columns int
	Found   []string
}

// FindSecretInDB searches every column of every table for secret (see AssertNoSecretInDB).
func FindSecretInDB(ctx context.Context, db dbx.DBTX, secret string) (SecretScan, error) {
	var out SecretScan
	rows, err := db.Query(ctx, `
		SELECT c.table_schema, c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE t.table_type = 'BASE TABLE'
		  AND c.table_schema NOT IN ('pg_catalog', 'information_schema') AND c.table_schema NOT LIKE 'pg_toast%'
		ORDER BY 1, 2, 3`)
	if err != nil {
		return out, fmt.Errorf("list columns: %w", err)
	}
	type column struct{ schema, table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.schema, &c.table, &c.name, &c.typ)
	})
	if err != nil {
		return out, fmt.Errorf("list columns: %w", err)
	}
	raw := []byte(secret)
	texts := []string{secret, hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw)}
	for _, c := range cols {
		ref := pgx.Identifier{c.schema, c.table}.Sanitize()
		col := pgx.Identifier{c.name}.Sanitize()
		// Every type has a text form (arrays, json, enums, numbers); bytea is also searched byte-wise, since
		// its text form is hex.
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NOT NULL AND (
			strpos(lower(%s::text), lower($1)) > 0 OR strpos(lower(%s::text), lower($2)) > 0 OR
			strpos(%s::text, $3) > 0 OR strpos(%s::text, $4) > 0`, ref, col, col, col, col, col)
		if c.typ == "bytea" {
			q += fmt.Sprintf(` OR position($5::bytea in %s) > 0`, col)
		}
		q += ")"
		args := []any{texts[0], texts[1], texts[2], texts[3]}
		if c.typ == "bytea" {
			args = append(args, raw)
		}
		var n int
		if err := db.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			return out, fmt.Errorf("scan %s.%s.%s: %w", c.schema, c.table, c.name, err)
		}
		out.Columns++
		if n > 0 {
			out.Found = append(out.Found, fmt.Sprintf("%s.%s.%s (%d rows)", c.schema, c.table, c.name, n))
		}
	}
	return out, nil
}
