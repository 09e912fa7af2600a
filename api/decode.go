package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/internal/apperr"
)

// maxBody is API.md's request body limit.
const maxBody = 1 << 20

// decode reads exactly one JSON object into dst, refusing unknown fields, trailing data and wrong types
// with a 400 that names the field, and oversized bodies with a 413.
func decode(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return &apperr.Error{Kind: apperr.KindMediaType, Code: "unsupported_content_type",
			Message: "Content-Type must be application/json, not " + strconv.Quote(ct)}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	// encoding/json turns invalid UTF-8 into U+FFFD and takes \u0000 as a character; neither may reach the
	// database (Postgres refuses NUL in text) or be stored in place of what the client sent.
	if err := checkText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
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

// isJSON: application/json, with or without parameters (charset=utf-8).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// checkText refuses a JSON body whose strings (values or member names) hold invalid UTF-8 — raw bytes or
// unpaired \ud800-style escapes — or NUL characters, naming each field: 422, so a client learns which of
// its values it must fix. A body that is not JSON at all is left to the decoder's 400.
func checkText(body []byte) error {
	var root json.RawMessage
	if err := json.Unmarshal(body, &root); err != nil {
		return nil
	}
	var v apperr.Validation
	walkText("", root, &v)
	return v.Err()
}

func walkText(path string, raw json.RawMessage, v *apperr.Validation) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	name := path
	if name == "" {
		name = "(body)"
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for k, child := range m {
			if msg := textProblem(k, raw); msg != "" {
				v.Add(name, "a member name %s", msg)
				continue
			}
			walkText(joinPath(path, k), child, v)
		}
	case '[':
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) != nil {
			return
		}
		for i, child := range a {
			walkText(fmt.Sprintf("%s[%d]", name, i), child, v)
		}
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return
		}
		if msg := textProblem(s, raw); msg != "" {
			v.Add(name, "%s", msg)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// textProblem says what is wrong with the decoded string s, whose JSON text is within raw.
func textProblem(s string, raw json.RawMessage) string {
	if strings.ContainsRune(s, 0) {
		return `must not contain NUL (\u0000) characters`
	}
	// The decoder writes U+FFFD for every invalid byte and unpaired surrogate; the ones the client really
	// sent are in the raw text, literally or as an escape.
	if n := strings.Count(s, string(utf8.RuneError)); n > 0 {
		sent := bytes.Count(raw, []byte(string(utf8.RuneError))) + bytes.Count(bytes.ToLower(raw), []byte(`\ufffd`))
		if n > sent {
			return "must be valid UTF-8"
		}
	}
	return ""
}

// refuseUnreadableText refuses a path id or query parameter holding NUL or invalid UTF-8 before any
// handler sees it: no id has such characters (404), and a filter with them is malformed (400). Postgres
// refuses both in text (SQLSTATE 22021), which used to surface as a 500.
func refuseUnreadableText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc := chi.RouteContext(r.Context()); rc != nil {
			for i, name := range rc.URLParams.Keys {
				// chi matches on the raw path when it has escapes of its own (%2F), so look at both forms.
				if i < len(rc.URLParams.Values) && unreadablePathValue(rc.URLParams.Values[i], r.URL.RawPath != "") {
					writeError(w, r, &apperr.Error{Kind: apperr.KindNotFound, Code: "not_found",
						Message: "no resource has this " + name + ": ids are printable UTF-8 without NUL characters"})
					return
				}
			}
		}
		for name, values := range r.URL.Query() {
			bad := unreadable(name)
			for _, v := range values {
				bad = bad || unreadable(v)
			}
			if bad {
				writeError(w, r, &apperr.Error{Kind: apperr.KindBadRequest, Code: "invalid_query",
					Message: "query parameters must be UTF-8 without NUL characters",
					Fields:  []apperr.FieldError{{Field: strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", ""), ""), Message: "must be UTF-8 without NUL characters"}}})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func unreadable(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }

func unreadablePathValue(s string, escaped bool) bool {
	if unreadable(s) || !escaped {
		return unreadable(s)
	}
	unescaped, err := url.PathUnescape(s)
	return err == nil && unreadable(unescaped)
}
