// Package apperr holds the typed errors domain packages return for the API to map to problem+json in one
// place (api/errors.go). Domain code says what went wrong in billing terms (not found, conflict, invalid
// field); the HTTP layer alone decides the status code.
package apperr

import (
	"errors"
	"fmt"
)

// Kind is the class of an error, which the API maps to a status code.
type Kind string

const (
	KindNotFound     Kind = "not_found"     // 404
	KindConflict     Kind = "conflict"      // 409
	KindValidation   Kind = "validation"    // 422
	KindDeclined     Kind = "declined"      // 402
	KindPrecondition Kind = "precondition"  // 412
	KindUnavailable  Kind = "unavailable"   // 503
	KindForbidden    Kind = "forbidden"     // 403
	KindBadRequest   Kind = "bad_request"   // 400
	KindRateLimited  Kind = "rate_limited"  // 429
	KindUnauthorized Kind = "unauthorized"  // 401
	KindTooLarge     Kind = "too_large"     // 413
	KindMediaType    Kind = "media_type"    // 415: a body in a format the endpoint does not read
	KindGateway      Kind = "gateway_error" // 502: the gateway refused in a way that is not the customer's fault
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a domain error with a kind, a stable machine code and a human message.
type Error struct {
	Kind    Kind
	Code    string // stable, snake_case: "customer_not_found", "external_id_taken", ...
	Message string
	Fields  []FieldError
	// Extra members for the problem document (e.g. decline_code, subscription_id).
	Extra map[string]any
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// NotFound says the resource named by id does not exist (or is not visible to the caller).
func NotFound(resource, id string) *Error {
	return &Error{Kind: KindNotFound, Code: resource + "_not_found", Message: fmt.Sprintf("%s %s not found", resource, id)}
}

// Conflict says the request clashes with the current state.
func Conflict(code, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid says one field is invalid.
func Invalid(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: KindValidation, Code: "validation_failed", Message: field + ": " + msg,
		Fields: []FieldError{{Field: field, Message: msg}}}
}

// Validation collects field errors; Err returns nil when there are none.
type Validation struct{ fields []FieldError }

// Add records a field error.
func (v *Validation) Add(field, format string, args ...any) {
	v.fields = append(v.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns the collected errors as one *Error, or nil.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	msg := v.fields[0].Field + ": " + v.fields[0].Message
	if len(v.fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(v.fields)-1)
	}
	return &Error{Kind: KindValidation, Code: "validation_failed", Message: msg, Fields: v.fields}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsKind reports whether err carries an *Error of kind k.
func IsKind(err error, k Kind) bool {
	e, ok := As(err)
	return ok && e.Kind == k
}

// CodeCurrencyNotSupported is the code of a request that would have a billing key's gateway charge in a
// currency it does not take (a USD plan on a Toss key): such a combination could never be collected, so it
// is refused where it is made (422) rather than discovered at the first charge.
const CodeCurrencyNotSupported = "currency_not_supported"

// CurrencyNotSupported says the gateway gw cannot charge in currency, which the request would have it do.
// field names the input that made the combination (plan_id, key_id, gateway); subscriptionID, when not
// empty, is a live subscription billed in that currency.
func CurrencyNotSupported(field, gw, currency, subscriptionID, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	extra := map[string]any{"gateway": gw, "currency": currency}
	if subscriptionID != "" {
		extra["subscription_id"] = subscriptionID
	}
	return &Error{Kind: KindValidation, Code: CodeCurrencyNotSupported, Message: msg,
		Fields: []FieldError{{Field: field, Message: fmt.Sprintf("the %s gateway does not charge in %s", gw, currency)}},
		Extra:  extra}
}
