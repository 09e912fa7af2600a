package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
)

// Origins of an action.
const (
	OriginAPI     = "api"
	OriginConsole = "console"
	OriginCLI     = "cli"
)

// MaxReason bounds a reason: a sentence or a ticket reference, not a document.
const MaxReason = 1000

// Entry is one action to record.
type Entry struct {
	Actor      string // an API key id, "console:<key id>" or "billingctl:<os user>"
	Role       string
	Action     string // e.g. "invoice.write_off"
	TargetType string // "invoice", "subscription", ...
	TargetID   string
	Reason     string
	// Before and After are snapshots of the target; each is marshaled to JSON (nil stores NULL).
	Before    any
	After     any
	RequestID string
	Origin    string
	At        time.Time
}

// Target is what an action was done to.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Record is a stored audit row as the API shows it.
type Record struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Role      string          `json:"role"`
	Action    string          `json:"action"`
	Target    Target          `json:"target"`
	Reason    string          `json:"reason"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	RequestID string          `json:"request_id"`
	Origin    string          `json:"origin"`
}

// ValidateReason checks a reason as every action requires it: present, not blank, not a novel.
// Callers check it before any work so a missing reason is a 422, not a rolled-back change.
func ValidateReason(reason string) error {
	r := strings.TrimSpace(reason)
	switch {
	case r == "":
		return apperr.Invalid("reason", "is required: say why (a ticket number or a sentence)")
	case utf8.RuneCountInString(r) > MaxReason:
		return apperr.Invalid("reason", "must be at most %d characters", MaxReason)
	}
	return nil
}

// Write records e in db, which should be the transaction that makes the change.
func Write(ctx context.Context, db dbx.DBTX, e Entry) (Record, error) {
	if err := ValidateReason(e.Reason); err != nil {
		return Record{}, err
	}
	if e.Actor == "" || e.Role == "" || e.Action == "" || e.TargetType == "" || e.TargetID == "" || e.At.IsZero() {
		return Record{}, fmt.Errorf("audit: actor, role, action, target and time are required (got %+v)", e)
	}
	before, err := snapshot(e.Before)
	if err != nil {
		return Record{}, fmt.Errorf("audit: before: %w", err)
	}
	after, err := snapshot(e.After)
	if err != nil {
		return Record{}, fmt.Errorf("audit: after: %w", err)
	}
	row, err := store.New(db).InsertAudit(ctx, store.InsertAuditParams{
		At: e.At, Actor: e.Actor, Role: e.Role, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
		Reason: strings.TrimSpace(e.Reason), Before: before, After: after, RequestID: e.RequestID, Origin: e.Origin,
	})
	if err != nil {
		return Record{}, fmt.Errorf("audit: %w", err)
	}
	return view(row), nil
}

func snapshot(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}

// Filter narrows List.
type Filter struct {
	TargetID string
	Actor    string
}

// List returns audit rows, oldest first.
func List(ctx context.Context, db dbx.DBTX, f Filter, p page.Request) (page.List[Record], error) {
	after := int64(0)
	if p.HasCursor() {
		n, ok := parseID(p.AfterID)
		if !ok {
			return page.List[Record]{}, apperr.Invalid("cursor", "is not a cursor this API returned")
		}
		after = n
	}
	q := store.New(db)
	max := int32(p.Limit + 1)
	var rows []store.AuditLog
	var err error
	switch {
	case f.TargetID != "":
		var actor *string
		if f.Actor != "" {
			actor = &f.Actor
		}
		rows, err = q.ListAuditByTarget(ctx, store.ListAuditByTargetParams{TargetID: f.TargetID, Actor: actor, AfterID: after, Max: max})
	case f.Actor != "":
		rows, err = q.ListAuditByActor(ctx, store.ListAuditByActorParams{Actor: f.Actor, AfterID: after, Max: max})
	default:
		rows, err = q.ListAudit(ctx, store.ListAuditParams{AfterID: after, Max: max})
	}
	if err != nil {
		return page.List[Record]{}, err
	}
	out := make([]Record, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return page.Build(out, p.Limit, func(r Record) (time.Time, string) { return r.At, r.ID }), nil
}

const idPrefix = "aud_"

func parseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, idPrefix), 10, 64)
	return n, err == nil && strings.HasPrefix(id, idPrefix) && n > 0
}

func view(r store.AuditLog) Record {
	return Record{ID: idPrefix + strconv.FormatInt(r.ID, 10), At: r.At.UTC(), Actor: r.Actor, Role: r.Role, Action: r.Action,
		Target: Target{Type: r.TargetType, ID: r.TargetID}, Reason: r.Reason, Before: nullJSON(r.Before), After: nullJSON(r.After),
		RequestID: r.RequestID, Origin: r.Origin}
}

func nullJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
