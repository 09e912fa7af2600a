package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dunningworks/billing/internal/store"
)

// TokenLookup resolves an API token exactly as the bearer-auth middleware does: bootstrap tokens first,
// then the hashed keys in the database.
type TokenLookup func(ctx context.Context, token string) (Principal, error)

// ConsoleFactory builds the support console's handler (package console). The API hands it its own token
// lookup, so people sign in to the console with the same tokens and the same check as the REST API, and
// the api package does not import the console.
type ConsoleFactory func(auth ConsoleAuth) http.Handler

// ConsoleAuth is what the console needs from the API's authentication: the sign-in check, and the check
// every console request makes that the key a session was started with still authenticates (a revoked key's
// sessions end at once, on every replica).
type ConsoleAuth struct {
	Lookup    TokenLookup
	KeyActive func(ctx context.Context, keyID string) (bool, error)
}

// APIKey is an API key as an admin may see it: never the token, never its hash.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Prefix    string     `json:"prefix"` // the token's first characters, enough to tell keys apart
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// ListAPIKeys lists the API keys stored in the database, oldest first (bootstrap tokens are configuration,
// not rows, and are not listed).
func ListAPIKeys(ctx context.Context, db store.DBTX) ([]APIKey, error) {
	rows, err := store.New(db).ListAPIKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out := make([]APIKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, APIKey{ID: r.ID, Name: r.Name, Role: r.Role, Prefix: r.Prefix, CreatedAt: r.CreatedAt.UTC(), RevokedAt: r.RevokedAt})
	}
	return out, nil
}
