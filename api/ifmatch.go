package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dunningworks/billing/internal/apperr"
)

// Optimistic concurrency (API.md): a versioned resource answers with ETag `"<version>"` and a mutation
// that carries If-Match is refused with 412 precondition_failed unless the resource is still at that
// version. Handlers pass ifMatchVersion's answer to the domain call (ExpectVersion), which compares it
// under the row lock, so the check and the change cannot be split by another writer. checkIfMatch is for
// a handler that already holds the current version that way itself.

// ifMatchVersion returns the version the request's If-Match names, or 0 when it sets no precondition (no
// If-Match, or "*": any current representation). An If-Match that no ETag of ours can ever match — a weak
// tag (If-Match compares strongly), something that is not a version, a version below 1 — is 412 at once.
// A list naming several versions cannot be checked atomically by one compare, so it is a 400.
func ifMatchVersion(r *http.Request) (int, error) {
	tags, present, err := ifMatchTags(r)
	if err != nil || !present {
		return 0, err
	}
	version := 0
	for _, t := range tags {
		if t == "*" {
			return 0, nil
		}
		v, ok := versionOf(t)
		if !ok {
			continue
		}
		if version != 0 && v != version {
			return 0, &apperr.Error{Kind: apperr.KindBadRequest, Code: "if_match_unsupported",
				Message: "If-Match may name one version (the ETag the resource answered with), not several"}
		}
		version = v
	}
	if version == 0 {
		return 0, preconditionFailed("If-Match %s matches no version of this resource", r.Header.Get("If-Match"))
	}
	return version, nil
}

// checkIfMatch compares If-Match with the resource's current version, with RFC 9110's full semantics.
func checkIfMatch(r *http.Request, current int) error {
	tags, present, err := ifMatchTags(r)
	if err != nil || !present {
		return err
	}
	for _, t := range tags {
		if t == "*" {
			return nil
		}
		if v, ok := versionOf(t); ok && v == current {
			return nil
		}
	}
	return preconditionFailed("the resource is at version %d (ETag %s), not the one If-Match names", current, etag(current))
}

func preconditionFailed(format string, args ...any) error {
	return &apperr.Error{Kind: apperr.KindPrecondition, Code: "precondition_failed", Message: fmt.Sprintf(format, args...)}
}

// ifMatchTags splits If-Match (all its header lines) into entity tags, keeping the W/ prefix.
func ifMatchTags(r *http.Request) (tags []string, present bool, err error) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return nil, false, nil
	}
	for _, line := range values {
		for _, t := range strings.Split(line, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) == 0 {
		return nil, false, &apperr.Error{Kind: apperr.KindBadRequest, Code: "malformed_if_match",
			Message: `If-Match must be "*" or the ETag the resource answered with, like "3"`}
	}
	return tags, true, nil
}

// versionOf reads a strong ETag of ours ("<version>").
func versionOf(tag string) (int, bool) {
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	v, err := strconv.Atoi(tag[1 : len(tag)-1])
	if err != nil || v < 1 || strconv.Itoa(v) != tag[1:len(tag)-1] {
		return 0, false
	}
	return v, true
}
