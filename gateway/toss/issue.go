package toss

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/dunningworks/billing/gateway"
)

type issueBody struct {
	AuthKey     string `json:"authKey"`
	CustomerKey string `json:"customerKey"`
}

type issueAnswer struct {
	BillingKey  string `json:"billingKey"`
	CustomerKey string `json:"customerKey"`
	CardCompany string `json:"cardCompany"`
	CardNumber  string `json:"cardNumber"`
	Card        struct {
		IssuerCode string `json:"issuerCode"`
		Number     string `json:"number"`
		CardType   string `json:"cardType"`
		OwnerType  string `json:"ownerType"`
	} `json:"card"`
}

// issuers names Toss's card issuer codes for display.
var issuers = map[string]string{
	"3K": "기업BC", "46": "광주", "71": "롯데", "30": "산업", "31": "BC", "51": "삼성", "38": "새마을",
	"41": "신한", "62": "신협", "36": "씨티", "33": "우리", "W1": "우리", "37": "우체국", "39": "저축",
	"35": "전북", "42": "제주", "15": "카카오뱅크", "3A": "케이뱅크", "24": "토스뱅크", "21": "하나",
	"61": "현대", "11": "국민", "91": "농협", "34": "수협", "6D": "DINERS", "4M": "MASTER", "3C": "UNIONPAY",
	"7A": "AMEX", "4J": "JCB", "4V": "VISA",
}

// IssueBillingKey exchanges an auth key for a billing key: POST /v1/billing/authorizations/issue.
//
// The idempotency key is derived from (customerKey, authKey), so a resend after a lost answer gets the
// same billing key back instead of a second one. A 4xx answer is classified by IssueRefusal: a refusal of
// the card or of the auth key is a *gateway.DeclineError, of our credentials a *gateway.MerchantError. A
// 429 is a *gateway.TryLaterError; transport errors and 5xx are plain errors (safe to retry with the same
// inputs).
func (a *Adapter) IssueBillingKey(ctx context.Context, customerKey, authKey string) (gateway.IssuedKey, error) {
	if customerKey == "" || authKey == "" {
		return gateway.IssuedKey{}, fmt.Errorf("%w: empty customer key or auth key", ErrInvalidRequest)
	}
	idem := derivedKey("issue", customerKey, authKey)
	ans, err := a.do(ctx, http.MethodPost, "/v1/billing/authorizations/issue", idem, "", issueBody{AuthKey: authKey, CustomerKey: customerKey})
	if err != nil {
		if !wasSent(err) {
			return gateway.IssuedKey{}, a.notSent(err)
		}
		return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: %w", a.name, err)
	}
	switch {
	case ans.status == http.StatusOK:
	case ans.status == http.StatusTooManyRequests:
		return gateway.IssuedKey{}, a.tryLater(ans)
	case ans.status >= 400 && ans.status < 500:
		e, ok := parseError(ans.body)
		if !ok {
			// A 4xx without Toss's error object is a proxy or a wrong route, not Toss's verdict.
			return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: HTTP %d without a Toss error: %s", a.name, ans.status, snippet(ans.body))
		}
		switch r := IssueRefusal(ans.status, e.Code); r {
		case RefusedCard:
			c, _ := Classify(e.Code)
			return gateway.IssuedKey{}, &gateway.DeclineError{Code: e.Code, Message: e.Message, Card: true, Class: declineClass(c)}
		case RefusedRequest:
			return gateway.IssuedKey{}, &gateway.DeclineError{Code: e.Code, Message: e.Message}
		case RefusedMerchant:
			return gateway.IssuedKey{}, a.merchantError(ans.status, e)
		default:
			return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: %w", a.name, &APIError{Status: ans.status, Code: e.Code, Message: e.Message})
		}
	default:
		e, _ := parseError(ans.body)
		return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: %w", a.name, &APIError{Status: ans.status, Code: e.Code, Message: e.Message})
	}
	var r issueAnswer
	if err := json.Unmarshal(ans.body, &r); err != nil {
		return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: unparseable answer: %w", a.name, err)
	}
	if r.BillingKey == "" {
		return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: answer has no billingKey", a.name)
	}
	card := gateway.Card{Brand: r.CardCompany, MaskedNumber: r.Card.Number}
	if card.Brand == "" {
		card.Brand = issuers[r.Card.IssuerCode]
		if card.Brand == "" {
			card.Brand = r.Card.IssuerCode
		}
	}
	if card.MaskedNumber == "" {
		card.MaskedNumber = r.CardNumber
	}
	return gateway.IssuedKey{Token: gateway.NewBillingKeyToken(r.BillingKey), Card: card}, nil
}

// Refusal is what a 4xx answer to a billing-key issue means, and so who can act on it.
type Refusal string

const (
	// RefusedCard: the card was declined (stolen, expired, refused by the issuer). The customer needs
	// another card: 402 with the code.
	RefusedCard Refusal = "card"
	// RefusedRequest: the auth key or the request was refused (an expired, reused or unknown auth key, a
	// customer key that does not match it, a malformed request). The client needs a new auth key: 422.
	RefusedRequest Refusal = "request"
	// RefusedMerchant: our credentials or contract were refused (a rotated secret key). Only an operator
	// can fix it: 502.
	RefusedMerchant Refusal = "merchant"
	// NotARefusal: Toss could not tell (a 4xx "still processing" code): retry with the same auth key.
	NotARefusal Refusal = ""
)

// issueRequestCodes are codes that, on a billing-key issue, refuse the auth key or the request rather
// than the card or our credentials. INVALID_REQUEST is what Toss answers for an expired, already used or
// unknown authKey; INVALID_AUTHORIZE_AUTH for an authKey from an authentication the issue does not accept.
// On a charge the first two are our request's fault (ClassTechnical); on an issue they come from the
// client's auth key.
var issueRequestCodes = map[string]bool{
	"INVALID_REQUEST":           true,
	"INVALID_AUTHORIZE_AUTH":    true,
	"INVALID_BILL_KEY_REQUEST":  true,
	"NOT_MATCHES_CUSTOMER_KEY":  true,
	"NOT_FOUND":                 true,
	"DUPLICATED_ORDER_ID":       true, // never expected on an issue; not a card decline either
	"ALREADY_PROCESSED_PAYMENT": true,
}

// IssueRefusal classifies a 4xx answer to a billing-key issue. A 401 is always our credentials. A code
// the table does not know is a refusal of the request: Toss answered definitively, so retrying the same
// auth key cannot help, and blaming the card would send the customer to their bank for nothing.
func IssueRefusal(status int, code string) Refusal {
	if status == http.StatusUnauthorized {
		return RefusedMerchant
	}
	if issueRequestCodes[code] {
		return RefusedRequest
	}
	switch c, listed := Classify(code); {
	case !listed:
		return RefusedRequest
	case c == ClassHard || c == ClassSoft:
		return RefusedCard
	case c == ClassTechnical:
		return RefusedMerchant
	default: // ClassUnknown
		return NotARefusal
	}
}
