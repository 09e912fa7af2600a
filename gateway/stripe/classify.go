package stripe

import "github.com/dunningworks/billing/gateway"

// declineRule is one row of the decline table.
type declineRule struct {
	class gateway.DeclineClass
	// capped marks soft declines that issuers use as catch-alls: retrying them is allowed but should stop
	// after a few attempts, because a persistent do_not_honor or generic_decline rarely turns into a yes.
	capped bool
}

var (
	hard        = declineRule{class: gateway.Hard}
	soft        = declineRule{class: gateway.Soft}
	softCapped  = declineRule{class: gateway.Soft, capped: true}
	unknownCode = softCapped
)

// declineTable classifies Stripe's decline codes (https://docs.stripe.com/declines/codes) and the card
// error codes Stripe puts in "code" when the issuer gave no decline_code. Keys are Stripe's spelling.
var declineTable = map[string]declineRule{
	// The card is gone or must never be charged again.
	"lost_card":                        hard,
	"stolen_card":                      hard,
	"pickup_card":                      hard,
	"fraudulent":                       hard,
	"revocation_of_authorization":      hard,
	"revocation_of_all_authorizations": hard,
	"stop_payment_order":               hard,
	"do_not_try_again":                 hard,
	"security_violation":               hard,
	"merchant_blacklist":               hard,
	"restricted_card":                  hard,
	// The card data is wrong or stale: only new card data from the customer helps.
	"expired_card":                      hard,
	"incorrect_number":                  hard,
	"invalid_number":                    hard,
	"incorrect_cvc":                     hard,
	"invalid_cvc":                       hard,
	"incorrect_zip":                     hard,
	"invalid_expiry_month":              hard,
	"invalid_expiry_year":               hard,
	"new_account_information_available": hard,
	"invalid_account":                   hard,
	// The card cannot do this kind of payment at all.
	"card_not_supported":             hard,
	"currency_not_supported":         hard,
	"transaction_not_allowed":        hard,
	"service_not_allowed":            hard,
	"not_permitted":                  hard,
	"testmode_decline":               hard,
	"incorrect_pin":                  hard,
	"invalid_pin":                    hard,
	"pin_try_exceeded":               hard,
	"offline_pin_required":           hard,
	"online_or_offline_pin_required": hard,
	// Off-session retries cannot pass Strong Customer Authentication; the customer has to come back
	// on-session, which is the same customer action a hard decline asks for. Retrying on the dunning
	// backoff would only collect more declines.
	"authentication_required": hard,

	// Temporary: money, limits or the issuer's availability may change.
	"insufficient_funds":               soft,
	"try_again_later":                  soft,
	"processing_error":                 soft,
	"issuer_not_available":             soft,
	"reenter_transaction":              soft,
	"approve_with_id":                  soft,
	"card_velocity_exceeded":           soft,
	"withdrawal_count_limit_exceeded":  soft,
	"card_decline_rate_limit_exceeded": soft,
	// Catch-alls: soft, but capped.
	"do_not_honor":          softCapped,
	"generic_decline":       softCapped,
	"card_declined":         softCapped,
	"call_issuer":           softCapped,
	"no_action_taken":       softCapped,
	"invalid_amount":        softCapped,
	"duplicate_transaction": softCapped,
}

// Classify returns the decline class of a Stripe decline and whether retries of it should be capped.
//
// code is the error's decline_code, or its code when the issuer gave no decline_code. adviceCode is
// Stripe's advice_code and wins over the table: "do_not_try_again" and "confirm_card_data" (retrying
// without new card data fails) make the decline hard, "try_again_later" makes it soft. A hard code
// softened by advice is capped, since the issuer's two signals disagree. Codes the table does not know
// are soft and capped: a new code never kills a billing key, and never earns endless retries either.
func Classify(code, adviceCode string) (class gateway.DeclineClass, capped bool) {
	rule, ok := declineTable[code]
	if !ok {
		rule = unknownCode
	}
	switch adviceCode {
	case "do_not_try_again", "confirm_card_data":
		return gateway.Hard, false
	case "try_again_later":
		if rule.class == gateway.Hard {
			return gateway.Soft, true
		}
		return gateway.Soft, rule.capped
	}
	return rule.class, rule.capped
}
