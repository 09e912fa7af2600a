// Package idem is what an Idempotency-Key means below the API, for the domain calls that record it with
// their effect (docs/idempotency.md): the request's identity (token scope, method, path, key) and its
// content (the request hash), and how long the pair is remembered.
package idem

import (
	"bytes"
	"time"

	"github.com/dunningworks/billing/internal/apperr"
)

// RetentionHours and Retention are how long an Idempotency-Key is remembered, by the API's key table and
// by the domain's records alike (SQL compares whole hours). API.md promises at least 24 hours.
const (
	RetentionHours = 24
	Retention      = RetentionHours * time.Hour
)

// Request is one request's Idempotency-Key as a domain call sees it. The zero value (no key) records
// nothing.
type Request struct {
	Identity []byte // SHA-256 of scope, method, path and key: the same for every retry
	Hash     []byte // the request's content; a retry must carry the same
}

// Set reports whether the request carried a key.
func (r Request) Set() bool { return len(r.Identity) > 0 }

// Check compares a recorded request's content with this one's: a different body under the same key is
// API.md's 422 idempotency_key_reused, never the first request's answer.
func (r Request) Check(recordedHash []byte) error {
	if bytes.Equal(r.Hash, recordedHash) {
		return nil
	}
	return ErrReused()
}

// ErrReused is the 422 for a key used with another request body.
func ErrReused() error {
	return &apperr.Error{Kind: apperr.KindValidation, Code: "idempotency_key_reused",
		Message: "this Idempotency-Key was used with a different request body; use a new key for a new request"}
}
