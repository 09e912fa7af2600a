package api_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// Paging through 120 plans 50 at a time: three pages, every plan exactly once, in a stable order, and
// next_cursor null on the last page. The test clock stands still, so every plan has the same created_at
// and the order rests on the cursor's id tie-break.
func TestCursorPaginationVisitsEveryRowOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	created := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 120 {
		wg.Go(func() {
			res := env.Do("POST", "/v1/plans", testenv.AdminToken, map[string]any{"code": fmt.Sprintf("page-%03d", i),
				"name": "Plan", "amount": "1000", "currency": "KRW", "interval": "month"})
			require.Equal(t, 201, res.Status, string(res.Body))
			mu.Lock()
			created[res.JSON(t)["id"].(string)] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Len(t, created, 120)

	type listing struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}
	seen := map[string]bool{}
	var order []string
	var sizes []int
	path := "/v1/plans?limit=50"
	for page := 0; ; page++ {
		require.Less(t, page, 4, "pagination does not end")
		res := env.Do("GET", path, testenv.ServiceToken, nil)
		require.Equal(t, 200, res.Status, string(res.Body))
		var l listing
		res.Decode(t, &l)
		sizes = append(sizes, len(l.Data))
		for _, p := range l.Data {
			require.False(t, seen[p.ID], "%s seen twice", p.ID)
			seen[p.ID] = true
			order = append(order, p.ID)
		}
		if l.NextCursor == nil {
			require.Contains(t, string(res.Body), `"next_cursor":null`)
			break
		}
		path = "/v1/plans?limit=50&cursor=" + url.QueryEscape(*l.NextCursor)
	}
	require.Equal(t, []int{50, 50, 20}, sizes)
	require.Equal(t, created, seen, "no gaps")

	// The same walk with another page size visits the same rows in the same order.
	var again []string
	path = "/v1/plans?limit=500"
	res := env.Do("GET", path, testenv.ServiceToken, nil)
	var all listing
	res.Decode(t, &all)
	require.Nil(t, all.NextCursor)
	for _, p := range all.Data {
		again = append(again, p.ID)
	}
	require.Equal(t, order, again)

	for _, bad := range []string{"limit=0", "limit=501", "limit=x", "cursor=bm90LWEtY3Vyc29y"} {
		res := env.Do("GET", "/v1/plans?"+bad, testenv.ServiceToken, nil)
		require.Equal(t, 422, res.Status, bad)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), bad)
	}
}
