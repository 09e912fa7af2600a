package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/internal/page"
)

// Fuzz targets for what the API reads from strangers: request bodies and list cursors. `go test` runs the
// seeds (f.Add and testdata/fuzz/<Target>); `go test -fuzz=FuzzDecode ./api` explores further.

// fuzzBodyLimit is small so the fuzzer reaches the 413 path too.
const fuzzBodyLimit = 256

func FuzzDecode(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"code":"basic","name":"Basic","amount":"9900","currency":"KRW","interval":"month","interval_count":1}`},
		{"application/json; charset=utf-8", `{"customer_id":"cus_1","plan_id":"plan_1","quantity":2,"trial_days":7}`},
		{"", `{"to":"2026-01-01T00:00:00Z"}`},
		{"", `{"by":"720h"}`},
		{"text/plain", `{}`},
		{"", ``},
		{"", `null`},
		{"", `{"interval_count": 1e400}`},
		{"", `{"quantity": 9223372036854775808}`},
		{"", `{"trial_days": -1.5}`},
		{"", `{"dunning_policy": {"steps": [1,2,3]}}`},
		{"", `{"to": "yesterday"}`},
		{"", `{"a":1}{"a":2}`},
		{"", "\xef\xbb\xbf{}"},
		{"", "{\"name\":\"\xff\xfe\"}"},
		{"", `[` + string(bytes.Repeat([]byte("["), 20000))},
		// Issue 16's hostile inputs: NUL, invalid UTF-8 (raw and as unpaired surrogates), a U+FFFD really
		// sent, wrong media types, an amount with decimals KRW does not have.
		{"", `{"name":"a\u0000b"}`},
		{"", `{"external_id":"\u0000"}`},
		{"", "{\"name\":\"caf\xe9\"}"},
		{"", `{"name":"x\ud800y"}`},
		{"", `{"name":"\udfff\ud800"}`},
		{"", `{"name":"\ud83d\ude00"}`},
		{"", `{"name":"a\ufffd\uFFFD�"}`},
		{"", "{\"auth_key\":\"ok-\xff\xfe\",\"customer_key\":\"ck\"}"},
		{"", `{"dunning_policy":{"\u0000":1}}`},
		{"", `{"code":"krw","amount":"9900.00","currency":"KRW","interval":"month","interval_count":0}`},
		{"text/plain; charset=utf-8", `{}`},
		{"application/x-www-form-urlencoded", `name=x`},
		{"application/json; charset=utf-8", `{"name":"` + strings.Repeat("가", 256) + `"}`},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		targets := []func() any{
			func() any { return &createPlanRequest{} },
			func() any { return &createSubscriptionRequest{} },
			func() any { return &advanceRequest{} },
			func() any { return &struct{}{} },
		}
		for _, newDst := range targets {
			for _, optional := range []bool{false, true} {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				r.Header.Set("Content-Type", contentType)
				r.Body = http.MaxBytesReader(rec, r.Body, fuzzBodyLimit)
				dst := newDst()
				var err error
				if optional {
					err = decodeOptional(r, dst)
				} else {
					err = decode(r, dst)
				}
				if err == nil {
					// decodeOptional takes a body of JSON whitespace only as no body.
					if !optional || len(bytes.Trim(body, " \t\r\n")) > 0 {
						require.True(t, json.Valid(body), "accepted a body that is not JSON: %q", body)
						require.True(t, utf8.Valid(body), "accepted invalid UTF-8: %q", body)
						var v any
						require.NoError(t, json.Unmarshal(body, &v))
						require.False(t, holdsNUL(v), "accepted a NUL character: %q", body)
					}
					continue
				}
				p := problemFor(err)
				require.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge,
					http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity}, p.Status,
					"%T %q: %v -> %d", dst, body, err, p.Status)
				if p.Status == http.StatusUnprocessableEntity {
					require.NotEmpty(t, p.Errors, "a refused text names its field")
				}
				require.NotEmpty(t, p.Code)
			}
		}
	})
}

// holdsNUL reports whether any string (or member name) in a decoded JSON value holds a NUL.
func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		for _, e := range v {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}

// FuzzUnreadableText: a path id or query parameter with NUL or invalid UTF-8 never reaches a handler;
// anything else does.
func FuzzUnreadableText(f *testing.F) {
	for _, seed := range []string{"cus_1", "\x00", "a\x00b", "\xff", "\xc0\xaf", "\xed\xa0\x80", "가", "\ufffd", "%00", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		router := chi.NewRouter()
		reached := false
		router.With(refuseUnreadableText).Get("/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) { reached = true })
		bad := strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
		for _, target := range []string{"/v1/things/" + url.PathEscape(s), "/v1/things/x?filter=" + url.QueryEscape(s)} {
			if s == "" && strings.HasSuffix(target, "/") {
				continue
			}
			reached = false
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			require.Equal(t, !bad, reached, "%q via %s", s, target)
			if bad {
				require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, rec.Code, "%q via %s", s, target)
			}
		}
	})
}

func FuzzPageParse(f *testing.F) {
	for _, seed := range []struct{ limit, cursor string }{
		{"", ""},
		{"50", page.Cursor(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), "plan_abc")},
		{"500", page.Cursor(time.Unix(0, 0), "a|b")},
		{"0", ""}, {"501", ""}, {"-1", ""}, {"1e3", ""}, {"99999999999999999999", ""},
		{"", "not-base64!"}, {"", "MjAyNg"}, {"", "fA"}, {"", "MjAyNi0wMS0wMlQwMzowNDowNVp8"},
	} {
		f.Add(seed.limit, seed.cursor)
	}
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		q := url.Values{}
		if limit != "" {
			q.Set("limit", limit)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p, err := page.Parse(q)
		if err != nil {
			require.Equal(t, http.StatusUnprocessableEntity, problemFor(err).Status, "%q %q: %v", limit, cursor, err)
			return
		}
		require.GreaterOrEqual(t, p.Limit, 1)
		require.LessOrEqual(t, p.Limit, page.Max)
		if limit == "" {
			require.Equal(t, page.Default, p.Limit)
		}
		require.Equal(t, cursor != "", p.HasCursor())
		if p.HasCursor() && p.AfterTime.Year() >= 0 && p.AfterTime.Year() <= 9999 {
			again, err := page.Parse(url.Values{"cursor": {page.Cursor(p.AfterTime, p.AfterID)}})
			require.NoError(t, err)
			require.True(t, again.AfterTime.Equal(p.AfterTime))
			require.Equal(t, p.AfterID, again.AfterID)
		}
	})
}

// Every position the API hands out as a cursor reads back as the same position.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(int64(1767225600), int64(123456789), "sub_0123")
	f.Add(int64(0), int64(0), "|")
	f.Add(int64(253402300799), int64(999999999), "\xff")
	f.Fuzz(func(t *testing.T, sec, nsec int64, id string) {
		if id == "" || sec < 0 || sec > 253402300799 || nsec < 0 || nsec > 999999999 {
			t.Skip("not a position a row can have")
		}
		at := time.Unix(sec, nsec)
		p, err := page.Parse(url.Values{"cursor": {page.Cursor(at, id)}})
		require.NoError(t, err)
		require.True(t, p.AfterTime.Equal(at))
		require.Equal(t, id, p.AfterID)
	})
}
