package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/app/testenv"
)

// A database outage under load, through a proxy the test cuts: reads and writes answer 503
// service_unavailable with Retry-After (never a 500), /readyz says "database unavailable" without the
// driver's details, and nothing answered during the outage is kept as an Idempotency-Key's result: the
// same request retried after recovery is performed. A test-clock advance that fails says how far it got,
// and an advance to its target completes it.
func TestDatabaseOutageIsA503AndRetriesAfterRecoveryWork(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{DBProxy: true})
	svc, adm := testenv.ServiceToken, testenv.AdminToken
	basic := env.CreatePlan("10000", "KRW", "month", 1)
	pro := env.CreatePlan("30000", "KRW", "month", 1)
	cus := env.Customer("ok")
	res := env.Subscribe(cus, basic)
	require.Equal(t, 201, res.Status, string(res.Body))
	sub := res.JSON(t)["id"].(string)
	target := env.Now().Add(time.Hour)

	// Load: readers and writers (with keys) keep going through the outage and the recovery.
	var mu sync.Mutex
	seen := map[int]int{}
	var unexpected []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				answers := []testenv.Response{
					env.Do("GET", "/v1/customers/"+cus, svc, nil),
					env.Do("POST", "/v1/customers", svc, map[string]any{"external_id": fmt.Sprintf("load-%d-%d", w, n),
						"email": "load@example.com", "name": "Load"}, fmt.Sprintf("Idempotency-Key: load-%d-%d", w, n)),
				}
				mu.Lock()
				for _, a := range answers {
					seen[a.Status]++
					if a.Status != 200 && a.Status != 201 && (a.Status != 503 || a.Header.Get("Retry-After") == "") {
						unexpected = append(unexpected, fmt.Sprintf("%d %s", a.Status, a.Body))
					}
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	env.DBProxy.Cut()

	res = env.Do("GET", "/v1/customers/"+cus, svc, nil)
	require.Equal(t, 503, res.Status, string(res.Body))
	require.Equal(t, "service_unavailable", res.JSON(t)["code"])
	require.Equal(t, "https://dunningworks.dev/problems/service_unavailable", res.JSON(t)["type"])
	require.Equal(t, "1", res.Header.Get("Retry-After"))

	res = env.Do("GET", "/readyz", "", nil)
	require.Equal(t, 503, res.Status, string(res.Body))
	require.Equal(t, "database unavailable", res.JSON(t)["detail"])
	for _, secret := range []string{"127.0.0.1", "postgres", "pgtdb", "testdb", "dial", "connect"} {
		require.NotContains(t, strings.ToLower(string(res.Body)), secret, "readyz names the database: %s", res.Body)
	}

	// A plan change (a route whose first outcome is normally kept, whatever it was) with a key.
	change := func() testenv.Response {
		return env.Do("POST", "/v1/subscriptions/"+sub+"/change-plan", svc, map[string]any{"plan_id": pro}, "Idempotency-Key: outage-change")
	}
	res = change()
	require.Equal(t, 503, res.Status, string(res.Body))
	require.Equal(t, "service_unavailable", res.JSON(t)["code"])

	res = env.Do("POST", "/v1/test-clock/advance", adm, map[string]any{"to": target.Format(time.RFC3339)})
	require.Equal(t, 503, res.Status, string(res.Body))
	require.Equal(t, "1", res.Header.Get("Retry-After"))

	time.Sleep(300 * time.Millisecond) // the load meets the outage
	env.DBProxy.Restore()
	require.Eventually(t, func() bool { return env.Do("GET", "/readyz", "", nil).Status == 200 }, 15*time.Second, 50*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.Empty(t, unexpected, "answers under the outage other than success or 503 with Retry-After (seen %v)", seen)
	require.Positive(t, seen[503], "the load met the outage")

	// The same key after recovery performs the change (a pooled connection the outage killed may still
	// answer one more 503, which keeps nothing either); a second retry replays it.
	res = untilNot503(t, change)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Empty(t, res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, pro, res.JSON(t)["subscription"].(map[string]any)["plan_id"])
	res = change()
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))

	res = untilNot503(t, func() testenv.Response {
		return env.Do("POST", "/v1/test-clock/advance", adm, map[string]any{"to": target.Format(time.RFC3339)})
	})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.True(t, env.Now().Equal(target))
	env.RequireBalanced()
}

// An advance cut off halfway answers where it stopped; the same target then completes it.
func TestTestClockAdvanceCutOffReportsHowFarItGot(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{DBProxy: true})
	plan := env.CreatePlan("9900", "KRW", "day", 1)
	for range 5 {
		res := env.Subscribe(env.Customer("ok"), plan)
		require.Equal(t, 201, res.Status, string(res.Body))
	}
	target := env.Now().Add(30 * 24 * time.Hour)
	done := make(chan testenv.Response, 1)
	go func() {
		done <- env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": target.Format(time.RFC3339)})
	}()
	time.Sleep(300 * time.Millisecond) // thirty daily renewals of five subscriptions take longer than this
	env.DBProxy.Cut()
	res := <-done
	env.DBProxy.Restore()
	if res.Status != 200 {
		require.Equal(t, 503, res.Status, string(res.Body))
		p := res.JSON(t)
		require.Equal(t, "service_unavailable", p["code"])
		require.Equal(t, target.UTC().Format(time.RFC3339), p["target"])
		reached, err := time.Parse(time.RFC3339Nano, p["now"].(string))
		require.NoError(t, err)
		require.False(t, reached.After(target))
		require.Contains(t, p["detail"], target.UTC().Format(time.RFC3339))
	}
	require.Eventually(t, func() bool { return env.Do("GET", "/readyz", "", nil).Status == 200 }, 15*time.Second, 50*time.Millisecond)
	res = untilNot503(t, func() testenv.Response {
		return env.Do("POST", "/v1/test-clock/advance", testenv.AdminToken, map[string]any{"to": target.Format(time.RFC3339)})
	})
	require.Equal(t, 200, res.Status, string(res.Body))
	require.True(t, env.Now().Equal(target))
	env.RequireBalanced()
}

// untilNot503 retries as a client honoring Retry-After would, a few times.
func untilNot503(t *testing.T, do func() testenv.Response) testenv.Response {
	t.Helper()
	res := do()
	for i := 0; i < 20 && res.Status == 503; i++ {
		require.NotEmpty(t, res.Header.Get("Retry-After"))
		time.Sleep(100 * time.Millisecond)
		res = do()
	}
	return res
}
