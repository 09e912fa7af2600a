package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CreatedAPIKey is a new key; Token is shown once and stored only as a hash.
type CreatedAPIKey struct {
	ID    string
	Role  string
	Token string
}

// CreateAPIKey makes a random token for role and stores its hash.
func CreateAPIKey(ctx context.Context, db store.DBTX, role, name string, now time.Time) (CreatedAPIKey, error) {
	switch role {
	case RoleService, RoleSupport, RoleAdmin:
	default:
		return CreatedAPIKey{}, fmt.Errorf("role must be service, support or admin, got %q", role)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return CreatedAPIKey{}, err
	}
	idRaw := make([]byte, 8)
	_, _ = rand.Read(idRaw)
	token := role[:3] + "_" + base64.RawURLEncoding.EncodeToString(raw)
	id := "key_" + base64.RawURLEncoding.EncodeToString(idRaw)
	err := store.New(db).CreateAPIKey(ctx, store.CreateAPIKeyParams{
		ID: id, Name: name, Role: role, TokenHash: HashToken(token), Prefix: token[:8], CreatedAt: now,
	})
	if err != nil {
		return CreatedAPIKey{}, fmt.Errorf("store api key: %w", err)
	}
	return CreatedAPIKey{ID: id, Role: role, Token: token}, nil
}

// RevokeAPIKey revokes a stored key: from the commit on, its token authenticates nowhere (every replica
// checks revoked_at on every request) and its console sessions end at their next request. The action is
// audited with the actor and reason, in the same transaction. Revoking a revoked key returns it unchanged
// and writes no second audit row. Bootstrap keys are configuration, not rows: they end when
// BILLING_BOOTSTRAP_KEYS no longer lists them.
func RevokeAPIKey(ctx context.Context, pool *pgxpool.Pool, a billing.Actor, id, reason string, now time.Time) (APIKey, error) {
	if strings.HasPrefix(id, "bootstrap:") {
		return APIKey{}, &apperr.Error{Kind: apperr.KindValidation, Code: "bootstrap_key",
			Message: "bootstrap keys come from BILLING_BOOTSTRAP_KEYS; remove the token there and restart to end it"}
	}
	if err := audit.ValidateReason(reason); err != nil {
		return APIKey{}, err
	}
	var out APIKey
	err := dbx.InTx(ctx, pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		before, err := q.LockAPIKey(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.NotFound("api_key", id)
		}
		if err != nil {
			return err
		}
		out = keyView(before.ID, before.Name, before.Role, before.Prefix, before.CreatedAt, before.RevokedAt)
		if before.RevokedAt != nil {
			return nil
		}
		after, err := q.RevokeAPIKey(ctx, store.RevokeAPIKeyParams{ID: id, Now: &now})
		if err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		}
		snapshot := out
		out = keyView(after.ID, after.Name, after.Role, after.Prefix, after.CreatedAt, after.RevokedAt)
		_, err = audit.Write(ctx, tx, audit.Entry{Actor: a.ID, Role: a.Role, Action: "api-key.revoke", TargetType: "api_key",
			TargetID: id, Reason: reason, Before: snapshot, After: out, RequestID: a.RequestID, Origin: a.Origin, At: now})
		return err
	})
	return out, err
}

// keyActive reports whether keyID still authenticates: a stored key not revoked, or a bootstrap key whose
// token is still configured (a bootstrap key id names its role and the first hex digits of its hash).
func (s *Server) keyActive(ctx context.Context, keyID string) (bool, error) {
	if strings.HasPrefix(keyID, "bootstrap:") {
		for _, b := range s.bootstrap {
			if keyID == "bootstrap:"+b.role+":"+hex.EncodeToString(b.hash[:4]) {
				return true, nil
			}
		}
		return false, nil
	}
	return store.New(s.pool).APIKeyActive(ctx, keyID)
}

func keyView(id, name, role, prefix string, created time.Time, revoked *time.Time) APIKey {
	if revoked != nil {
		r := revoked.UTC()
		revoked = &r
	}
	return APIKey{ID: id, Name: name, Role: role, Prefix: prefix, CreatedAt: created.UTC(), RevokedAt: revoked}
}

// ListAPIKeysPage lists stored keys, oldest first, a page at a time.
func ListAPIKeysPage(ctx context.Context, db store.DBTX, p page.Request) (page.List[APIKey], error) {
	rows, err := store.New(db).ListAPIKeysPage(ctx, store.ListAPIKeysPageParams{HasCursor: p.HasCursor(), AfterTime: p.AfterTime,
		AfterID: p.AfterID, Max: int32(p.Limit + 1)})
	if err != nil {
		return page.List[APIKey]{}, fmt.Errorf("list api keys: %w", err)
	}
	out := make([]APIKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, keyView(r.ID, r.Name, r.Role, r.Prefix, r.CreatedAt, r.RevokedAt))
	}
	return page.Build(out, p.Limit, func(k APIKey) (time.Time, string) { return k.CreatedAt, k.ID }), nil
}
