package pgsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Card behaviors, chosen by the auth key's prefix at issuance and changeable with SetBehavior.
const (
	BehaviorOK           = "ok"           // every charge succeeds
	BehaviorInsufficient = "insufficient" // soft: REJECT_CARD_PAYMENT (limit / insufficient funds)
	BehaviorLimit        = "limit"        // soft: EXCEED_MAX_DAILY_PAYMENT_COUNT
	BehaviorStolen       = "stolen"       // hard: INVALID_STOPPED_CARD
	BehaviorLost         = "lost"         // hard: INVALID_CARD_LOST_OR_STOLEN
	BehaviorExpired      = "expired"      // hard: INVALID_CARD_EXPIRATION
	BehaviorBlocked      = "blocked"      // hard: INVALID_REJECT_CARD (issuer refuses the card)
	BehaviorFlaky        = "flaky"        // "flaky-N": the first N charges are soft-declined, then ok
)

// decline is a charge refusal a behavior produces.
type decline struct {
	status int
	code   string
	msg    string
}

var declines = map[string]decline{
	BehaviorInsufficient: {http.StatusForbidden, "REJECT_CARD_PAYMENT", "한도초과 혹은 잔액부족으로 결제에 실패했습니다."},
	BehaviorLimit:        {http.StatusBadRequest, "EXCEED_MAX_DAILY_PAYMENT_COUNT", "하루 결제 가능 횟수를 초과했습니다."},
	BehaviorStolen:       {http.StatusBadRequest, "INVALID_STOPPED_CARD", "정지된 카드 입니다."},
	BehaviorLost:         {http.StatusBadRequest, "INVALID_CARD_LOST_OR_STOLEN", "분실 혹은 도난 카드입니다."},
	BehaviorExpired:      {http.StatusBadRequest, "INVALID_CARD_EXPIRATION", "카드 정보를 다시 확인해주세요. (유효기간)"},
	BehaviorBlocked:      {http.StatusBadRequest, "INVALID_REJECT_CARD", "카드 사용이 거절되었습니다. 카드사 문의가 필요합니다."},
}

var flakyDecline = declines[BehaviorInsufficient]

// parseBehavior validates a behavior name and returns its canonical form and flaky count.
// "insufficient_funds" is accepted as an alias of "insufficient".
func parseBehavior(b string) (string, int, error) {
	if b == "insufficient_funds" {
		b = BehaviorInsufficient
	}
	if b == BehaviorOK {
		return b, 0, nil
	}
	if _, ok := declines[b]; ok {
		return b, 0, nil
	}
	if n, ok := strings.CutPrefix(b, BehaviorFlaky+"-"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return "", 0, fmt.Errorf("behavior %q: flaky count must be a non-negative integer", b)
		}
		return b, v, nil
	}
	return "", 0, fmt.Errorf("unknown behavior %q", b)
}

// IssueRefusal is how Toss refuses a billing-key issue for an auth key. The auth key's prefix chooses it,
// so a test can meet every kind of refusal Toss gives; the answers are Toss's own (status, code, message).
type IssueRefusal struct {
	Prefix  string // the auth key is this, or starts with this followed by '-'
	Status  int
	Code    string
	Message string
	// Kind is who can act on it: "request" (the auth key or request: a new auth key is needed) or "card"
	// (the card was declined: another card is needed). It documents the table for the adapter's tests.
	Kind string
}

// IssueRefusals lists the refused auth keys, most specific prefix first.
var IssueRefusals = []IssueRefusal{
	// The auth key or the request.
	{"authkey-expired", http.StatusBadRequest, "INVALID_REQUEST", "만료된 authKey 입니다. 카드 등록을 다시 진행해주세요.", "request"},
	{"authkey-used", http.StatusBadRequest, "INVALID_REQUEST", "이미 사용된 authKey 입니다.", "request"},
	{"authkey-unknown", http.StatusBadRequest, "INVALID_REQUEST", "잘못된 요청입니다.", "request"},
	{"authkey-method", http.StatusBadRequest, "INVALID_AUTHORIZE_AUTH", "유효하지 않은 인증 방식입니다.", "request"},
	{"authkey-customer", http.StatusBadRequest, "NOT_MATCHES_CUSTOMER_KEY", "빌링 인증 고객키와 결제 요청 고객키가 일치하지 않습니다.", "request"},
	{"bad", http.StatusBadRequest, "INVALID_BILL_KEY_REQUEST", "빌링 인증 정보가 유효하지 않습니다.", "request"},
	{"reject", http.StatusBadRequest, "INVALID_BILL_KEY_REQUEST", "빌링 인증 정보가 유효하지 않습니다.", "request"},
	// The card.
	{"card-stolen", http.StatusBadRequest, "INVALID_STOPPED_CARD", "정지된 카드 입니다.", "card"},
	{"card-lost", http.StatusBadRequest, "INVALID_CARD_LOST_OR_STOLEN", "분실 혹은 도난 카드입니다.", "card"},
	{"card-expired", http.StatusBadRequest, "INVALID_CARD_EXPIRATION", "카드 정보를 다시 확인해주세요. (유효기간)", "card"},
	{"card-rejected", http.StatusBadRequest, "INVALID_REJECT_CARD", "카드 사용이 거절되었습니다. 카드사 문의가 필요합니다.", "card"},
	{"card-number", http.StatusBadRequest, "INVALID_CARD_NUMBER", "카드번호를 다시 확인해주세요.", "card"},
	{"card-company", http.StatusForbidden, "REJECT_CARD_COMPANY", "결제 승인이 거절되었습니다.", "card"},
}

// issueRefusal returns the refusal an auth key asks for. "reject" matches any auth key starting with it
// ("reject-this-card", "rejected"), as it always has.
func issueRefusal(authKey string) (IssueRefusal, bool) {
	for _, r := range IssueRefusals {
		if authKey == r.Prefix || strings.HasPrefix(authKey, r.Prefix+"-") || r.Prefix == "reject" && strings.HasPrefix(authKey, r.Prefix) {
			return r, true
		}
	}
	return IssueRefusal{}, false
}

// behaviorFromAuthKey reads an auth key at issuance. The behavior is the prefix before the first '-'
// ("insufficient-42"), except flaky-N which keeps its count ("flaky-2-cust7" is flaky-2). Auth keys the
// issue refuses (IssueRefusals) never get here. Any other auth key is "ok", so random auth keys behave like
// real cards.
func behaviorFromAuthKey(authKey string) (behavior string, flaky int) {
	if rest, ok := strings.CutPrefix(authKey, BehaviorFlaky+"-"); ok {
		n, _, _ := strings.Cut(rest, "-")
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			return BehaviorFlaky + "-" + n, v
		}
	}
	prefix, _, _ := strings.Cut(authKey, "-")
	if b, n, err := parseBehavior(prefix); err == nil && !strings.HasPrefix(b, BehaviorFlaky) {
		return b, n
	}
	return BehaviorOK, 0
}
