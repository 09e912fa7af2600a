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
// same billing key back instead of a second one. A 4xx refusal of the card or auth key is a
// *gateway.DeclineError (errors.Is gateway.ErrAuthKeyRejected). Merchant-side refusals (bad secret key,
// malformed request: ClassTechnical) are *APIError instead, because telling a customer their card was
// rejected when our configuration is wrong would send them away for nothing. A 429 is a
// *gateway.TryLaterError; transport errors and 5xx are plain errors (safe to retry with the same inputs).
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
		if ok {
			if c, _ := Classify(e.Code); c != ClassTechnical {
				return gateway.IssuedKey{}, &gateway.DeclineError{Code: e.Code, Message: e.Message}
			}
		}
		return gateway.IssuedKey{}, fmt.Errorf("%s: issue billing key: %w", a.name, &APIError{Status: ans.status, Code: e.Code, Message: e.Message})
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
