package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/dunningworks/billing/internal/store"
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
