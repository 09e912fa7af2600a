package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// client talks to whichever API replica is alive, retrying across kills. Every POST carries an
// Idempotency-Key, so a retry after a replica died mid-request has exactly one effect.
type client struct {
	replicas []*proc
	token    string
	http     *http.Client
	rnd      *rand.Rand
	rndMu    sync.Mutex // the seeding sends from several goroutines
}

type answer struct {
	Status int
	Body   []byte
}

func (a answer) decode(v any) error { return json.Unmarshal(a.Body, v) }

func (c *client) do(ctx context.Context, method, path, idemKey string, body any) (answer, error) {
	return c.send(ctx, method, path, idemKey, body, true)
}

// send is do; with retry5xx false a 5xx answer is returned rather than retried (a call that fails while
// the gateway is down, which the fault phase keeps down until the caller moves on).
func (c *client) send(ctx context.Context, method, path, idemKey string, body any, retry5xx bool) (answer, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return answer{}, err
		}
	}
	// An advance persists its progress step by step, so retrying it after a kill always gets further; on
	// a loaded machine under frequent kills that can take a while.
	patience := 3 * time.Minute
	if strings.HasSuffix(path, "/advance") {
		patience = 10 * time.Minute
	}
	deadline := time.Now().Add(patience)
	var lastErr error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if ctx.Err() != nil {
			return answer{}, ctx.Err()
		}
		c.rndMu.Lock()
		p := c.replicas[(attempt+c.rnd.IntN(len(c.replicas)))%len(c.replicas)]
		c.rndMu.Unlock()
		if !p.isAlive() {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+p.addr+path, bytes.NewReader(raw))
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		res, err := c.http.Do(req)
		if err != nil {
			lastErr = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// 409 idempotency_key_in_use: the first request is still running (or died holding the key);
		// 5xx and 503: the replica is going down or the database is busy. Try again.
		// A replayed 5xx is the stored first outcome of this key: asking again changes nothing.
		replayed := res.Header.Get("Idempotent-Replayed") == "true"
		if (res.StatusCode >= 500 && !replayed && retry5xx) || (res.StatusCode == 409 && bytes.Contains(b, []byte("idempotency_key_in_use"))) {
			lastErr = fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		return answer{Status: res.StatusCode, Body: b}, nil
	}
	return answer{}, fmt.Errorf("%s %s: gave up: %v", method, path, lastErr)
}
