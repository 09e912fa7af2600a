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

// behaviorFromAuthKey reads an auth key at issuance. The behavior is the prefix before the first '-'
// ("insufficient-42"), except flaky-N which keeps its count ("flaky-2-cust7" is flaky-2). refused is true
// for "bad" and anything starting with "reject": the issue itself fails. Any other auth key is "ok", so
// random auth keys behave like real cards.
func behaviorFromAuthKey(authKey string) (behavior string, flaky int, refused bool) {
	if authKey == "bad" || strings.HasPrefix(authKey, "bad-") || strings.HasPrefix(authKey, "reject") {
		return "", 0, true
	}
	if rest, ok := strings.CutPrefix(authKey, BehaviorFlaky+"-"); ok {
		n, _, _ := strings.Cut(rest, "-")
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			return BehaviorFlaky + "-" + n, v, false
		}
	}
	prefix, _, _ := strings.Cut(authKey, "-")
	if b, n, err := parseBehavior(prefix); err == nil && !strings.HasPrefix(b, BehaviorFlaky) {
		return b, n, false
	}
	return BehaviorOK, 0, false
}
