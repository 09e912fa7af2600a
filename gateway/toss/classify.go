package toss

import "github.com/dunningworks/billing/gateway"

// Class is what an error code from Toss means for the charge that received it.
type Class string

const (
	// ClassHard: the card or key is unusable; retrying the same billing key cannot succeed.
	ClassHard Class = "hard"
	// ClassSoft: the issuer refused this time (limit, balance, hours); a later retry can succeed.
	ClassSoft Class = "soft"
	// ClassUnknown: Toss could not tell whether money moved; resolve by Lookup.
	ClassUnknown Class = "unknown"
	// ClassAlreadyDone: the order id was already processed; the answer is whatever Lookup says.
	ClassAlreadyDone Class = "already_done"
	// ClassTechnical: Toss refused the request for a merchant-side reason (keys, contract, request shape).
	// It is never the customer's decline, so the adapter reports Unknown with the code in the reason: the
	// reconciler's lookup then finds NotFound, and alerting sees the code instead of dunning a customer.
	ClassTechnical Class = "technical"
)

// codeClasses classifies Toss error codes, from Toss's error-code reference (billing approval, billing key
// issue, payment lookup). A code that is not here is classified by Classify's fallback.
var codeClasses = map[string]Class{
	// Hard: no retry on this key.
	"INVALID_STOPPED_CARD":             ClassHard, // card stopped (reported stolen, closed by issuer)
	"INVALID_CARD_EXPIRATION":          ClassHard, // card expired; a new card needs a new billing key
	"INVALID_REJECT_CARD":              ClassHard, // issuer refuses the card outright; customer must call the issuer
	"INVALID_CARD_NUMBER":              ClassHard, // the card number behind the key is invalid
	"NOT_SUPPORTED_CARD_TYPE":          ClassHard, // card type cannot be used for this payment
	"NOT_MATCHES_CUSTOMER_KEY":         ClassHard, // key was issued to another customerKey; no retry can fix it
	"INVALID_CARD_LOST_OR_STOLEN":      ClassHard, // lost or stolen card
	"RESTRICTED_TRANSFER_ACCOUNT":      ClassHard, // account frozen for transfers
	"INVALID_ACCOUNT_INFO_RE_REGISTER": ClassHard, // account info invalid; the customer must register again
	"REJECT_TOSSPAY_INVALID_ACCOUNT":   ClassHard, // linked account no longer valid
	"FDS_ERROR":                        ClassHard, // fraud detection blocked the payment; retrying looks worse
	"INVALID_BILL_KEY_REQUEST":         ClassHard, // the billing authorization is invalid
	"NOT_FOUND":                        ClassHard, // on a charge: the billing key does not exist (deleted/never issued)

	// Soft: retry on the dunning backoff.
	"REJECT_CARD_PAYMENT":                 ClassSoft, // over limit or insufficient funds
	"REJECT_CARD_COMPANY":                 ClassSoft, // issuer declined this approval
	"PROVIDER_ERROR":                      ClassSoft, // temporary provider error, "try again in a few minutes"
	"EXCEED_MAX_DAILY_PAYMENT_COUNT":      ClassSoft, // daily count limit; next day works
	"REJECT_ACCOUNT_PAYMENT":              ClassSoft, // insufficient balance in the linked account
	"EXCEED_MAX_PAYMENT_AMOUNT":           ClassSoft, // per-payment amount limit
	"EXCEED_MAX_AMOUNT":                   ClassSoft, // amount limit
	"EXCEED_MAX_ONE_DAY_AMOUNT":           ClassSoft, // daily amount limit
	"EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT":   ClassSoft, // monthly amount limit
	"EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT":  ClassSoft, // daily withdrawal limit
	"EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT": ClassSoft, // single withdrawal limit
	"EXCEED_MAX_AUTH_COUNT":               ClassSoft, // too many authentications; resets later
	"NOT_AVAILABLE_BANK":                  ClassSoft, // outside bank service hours
	"NOT_AVAILABLE_PAYMENT":               ClassSoft, // payment unavailable in this time window (maintenance)
	"CARD_PROCESSING_ERROR":               ClassSoft, // issuer-side processing error, answered as a refusal
	"COMMON_ERROR":                        ClassSoft, // "temporary error, try again later" (seen as ABORTED failure)

	// Unknown: the approval may or may not have happened.
	"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": ClassUnknown, // payment failed inside Toss mid-flight
	"FAILED_INTERNAL_SYSTEM_PROCESSING":         ClassUnknown, // internal error
	"UNKNOWN_PAYMENT_ERROR":                     ClassUnknown, // Toss itself does not know
	"IDEMPOTENT_REQUEST_PROCESSING":             ClassUnknown, // an earlier request with this key is still running
	"FAILED_CARD_COMPANY_RESPONSE":              ClassUnknown, // issuer did not answer cleanly
	"FAILED_DB_PROCESSING":                      ClassUnknown, // Toss database error mid-flight

	// Already done: a resend of an order Toss already processed; look it up.
	"DUPLICATED_ORDER_ID":       ClassAlreadyDone,
	"ALREADY_PROCESSED_PAYMENT": ClassAlreadyDone,

	// Technical: merchant-side configuration or request errors; never a customer decline.
	"UNAUTHORIZED_KEY":                                ClassTechnical, // wrong secret key
	"INVALID_API_KEY":                                 ClassTechnical, // wrong secret key / environment
	"INCORRECT_BASIC_AUTH_FORMAT":                     ClassTechnical, // malformed Authorization header
	"FORBIDDEN_REQUEST":                               ClassTechnical, // key not allowed to call this API
	"INVALID_REQUEST":                                 ClassTechnical, // malformed request (e.g. an orderId Toss does not accept)
	"BELOW_MINIMUM_AMOUNT":                            ClassTechnical, // amount under Toss's minimum; our pricing, not the card
	"NOT_FOUND_TERMINAL_ID":                           ClassTechnical, // merchant contract/terminal missing
	"INVALID_UNREGISTERED_SUBMALL":                    ClassTechnical, // sub-merchant not registered
	"NOT_REGISTERED_BUSINESS":                         ClassTechnical, // business not registered
	"INVALID_AUTHORIZE_AUTH":                          ClassTechnical, // authorization method not allowed for the merchant
	"NOT_SUPPORTED_METHOD":                            ClassTechnical, // payment method not enabled for the merchant
	"NOT_ALLOWED_POINT_USE":                           ClassTechnical, // we asked for card points; we never should
	"EXCEED_MAX_CARD_INSTALLMENT_PLAN":                ClassTechnical, // installments are never requested
	"INVALID_CARD_INSTALLMENT_PLAN":                   ClassTechnical, // installments are never requested
	"NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT": ClassTechnical, // installments are never requested
	"NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN":          ClassTechnical, // installments are never requested
}

// Classify returns the class of a Toss error code and whether the code is in the table. An unlisted code
// on a 4xx is a soft decline: Toss answered definitively (a 4xx is not "processing"), so the charge did
// not happen, and soft keeps the customer on the bounded dunning backoff rather than stopping their key on
// a code we have never seen. Every unlisted code is logged by the caller with its message so the table can
// grow.
func Classify(code string) (Class, bool) {
	c, ok := codeClasses[code]
	if !ok {
		return ClassSoft, false
	}
	return c, true
}

// Codes returns every code in the classification table, for tests and documentation.
func Codes() map[string]Class {
	out := make(map[string]Class, len(codeClasses))
	for k, v := range codeClasses {
		out[k] = v
	}
	return out
}

func declineClass(c Class) gateway.DeclineClass {
	if c == ClassHard {
		return gateway.Hard
	}
	return gateway.Soft
}
