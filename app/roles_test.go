package app_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
	"github.com/dunningworks/billing/internal/testdb"
)

// billingd checks the database role it runs as: the service's role has no power over the audit log, and
// the schema owner's (a single-role setup) is reported, so the start log says what is wrong.
func TestStartReportsARoleThatCanRewriteTheAuditLog(t *testing.T) {
	t.Parallel()
	db := testdb.Create(t)
	service := testenv.New(t, testenv.Options{DBURL: db.URL})
	require.Empty(t, service.App.RoleProblems)
	require.Equal(t, 200, service.Do("GET", "/readyz", "", nil).Status)

	owner := testenv.New(t, testenv.Options{DBURL: db.OwnerURL})
	require.Len(t, owner.App.RoleProblems, 1)
	require.Contains(t, owner.App.RoleProblems[0], "owns the schema's tables")
}
