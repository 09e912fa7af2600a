package toss

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dunningworks/billing/gateway"
)

// DeleteBillingKey deletes a billing key at Toss: DELETE /v1/billing/{billingKey}, so the key cannot be
// charged again by anyone holding it. A 2xx is done; so is a 404 with Toss's own code (the key is already
// gone, e.g. a retry after a lost answer). A 401, or a merchant-side code, is a *gateway.MerchantError; a
// 429 is a *gateway.TryLaterError; everything else (5xx, transport errors, other 4xx) is an error the
// caller retries. The billing key is a path segment and is scrubbed from every error.
func (a *Adapter) DeleteBillingKey(ctx context.Context, key gateway.BillingKeyToken, _ string) error {
	if key.IsZero() {
		return fmt.Errorf("%w: empty billing key", ErrInvalidRequest)
	}
	bk := key.Reveal()
	ans, err := a.do(ctx, http.MethodDelete, "/v1/billing/"+url.PathEscape(bk), "", bk, nil)
	if err != nil {
		if !wasSent(err) {
			return a.notSent(err)
		}
		return fmt.Errorf("%s: delete billing key: outcome unknown: %w", a.name, err)
	}
	e, coded := parseError(ans.body)
	switch {
	case ans.status >= 200 && ans.status < 300:
		return nil
	case ans.status == http.StatusNotFound && coded:
		// Only Toss's own answer proves the key is gone; a bare 404 may be a proxy or a wrong route.
		return nil
	case ans.status == http.StatusTooManyRequests:
		return a.tryLater(ans)
	case ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden:
		return a.merchantError(ans.status, e)
	case ans.status < 500 && coded:
		if c, _ := Classify(e.Code); c == ClassTechnical {
			return a.merchantError(ans.status, e)
		}
	}
	return fmt.Errorf("%s: delete billing key: HTTP %d %s: %s", a.name, ans.status, e.Code, e.Message)
}
