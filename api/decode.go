package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dunningworks/billing/internal/apperr"
)

// maxBody is API.md's request body limit.
const maxBody = 1 << 20

// decode reads exactly one JSON object into dst, refusing unknown fields, trailing data and wrong types
// with a 400 that names the field, and oversized bodies with a 413.
func decode(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &apperr.Error{Kind: apperr.KindBadRequest, Code: "unsupported_content_type",
			Message: "Content-Type must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badJSON("the body must hold exactly one JSON object")
	}
	return nil
}

// decodeOptional is decode for endpoints whose body may be empty.
func decodeOptional(r *http.Request, dst any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	err := decode(r, dst)
	if e, ok := apperr.As(err); ok && e.Code == "empty_body" {
		return nil
	}
	return err
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return &apperr.Error{Kind: apperr.KindBadRequest, Code: "empty_body", Message: "the request body is empty; send a JSON object"}
	case errors.As(err, &syntax):
		return badJSON(fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badJSON("malformed JSON: unexpected end of body")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return &apperr.Error{Kind: apperr.KindBadRequest, Code: "malformed_json",
			Message: fmt.Sprintf("%s must be %s", field, jsonKind(typeErr.Type.Kind().String())),
			Fields:  []apperr.FieldError{{Field: field, Message: "must be " + jsonKind(typeErr.Type.Kind().String())}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apperr.Error{Kind: apperr.KindBadRequest, Code: "unknown_field",
			Message: fmt.Sprintf("unknown field %q", field), Fields: []apperr.FieldError{{Field: field, Message: "unknown field"}}}
	default:
		return badJSON("malformed JSON: " + err.Error())
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "of another type"
}

func badJSON(msg string) error {
	return &apperr.Error{Kind: apperr.KindBadRequest, Code: "malformed_json", Message: msg}
}
