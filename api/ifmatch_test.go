package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/apperr"
)

func withIfMatch(values ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/subscriptions/sub_1/cancel", nil)
	for _, v := range values {
		r.Header.Add("If-Match", v)
	}
	return r
}

func TestIfMatchVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		headers []string
		version int
		status  int // 0: no error
	}{
		{"absent", nil, 0, 0},
		{"star", []string{"*"}, 0, 0},
		{"one version", []string{`"7"`}, 7, 0},
		{"spaces", []string{`  "7" `}, 7, 0},
		{"the same twice", []string{`"7", "7"`}, 7, 0},
		{"a weak tag never matches, the strong one does", []string{`W/"7", "7"`}, 7, 0},
		{"weak only", []string{`W/"7"`}, 0, 412},
		{"not ours", []string{`"abc"`}, 0, 412},
		{"unquoted", []string{`7`}, 0, 412},
		{"zero", []string{`"0"`}, 0, 412},
		{"negative", []string{`"-3"`}, 0, 412},
		{"leading zero is another tag", []string{`"07"`}, 0, 412},
		{"several versions", []string{`"7"`, `"8"`}, 0, 400},
		{"only commas", []string{` , `}, 0, 400},
	}
	for _, c := range cases {
		v, err := ifMatchVersion(withIfMatch(c.headers...))
		if c.status == 0 {
			require.NoError(t, err, c.name)
			require.Equal(t, c.version, v, c.name)
			continue
		}
		require.Error(t, err, c.name)
		p := problemFor(err)
		require.Equal(t, c.status, p.Status, c.name)
		if c.status == 412 {
			require.Equal(t, "precondition_failed", p.Code, c.name)
		}
	}
}

func TestCheckIfMatch(t *testing.T) {
	t.Parallel()
	require.NoError(t, checkIfMatch(withIfMatch(), 3))
	require.NoError(t, checkIfMatch(withIfMatch("*"), 3))
	require.NoError(t, checkIfMatch(withIfMatch(`"3"`), 3))
	require.NoError(t, checkIfMatch(withIfMatch(`"2", "3"`), 3))
	err := checkIfMatch(withIfMatch(`"2"`), 3)
	require.True(t, apperr.IsKind(err, apperr.KindPrecondition))
	require.Equal(t, "precondition_failed", problemFor(err).Code)
	require.Contains(t, problemFor(err).Detail, `"3"`)
	require.Error(t, checkIfMatch(withIfMatch(`W/"3"`), 3))
}
