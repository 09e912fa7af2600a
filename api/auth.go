package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
)

// Roles of API.md.
const (
	RoleService = "service"
	RoleSupport = "support"
	RoleAdmin   = "admin"
)

// Principal is the authenticated caller.
type Principal struct {
	// KeyID identifies the API key ("bootstrap:<role>:<hash prefix>" for bootstrap tokens).
	KeyID string
	Role  string
	// Scope is a hash of the token: idempotency keys are scoped per caller.
	Scope string
}

type principalKey struct{}

// PrincipalFrom returns the caller of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// HashToken is how API tokens are stored: SHA-256 (tokens are long random strings, so no KDF is needed).
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

type bootstrapToken struct {
	role string
	hash []byte
}

// authenticate resolves the bearer token against the bootstrap keys and the hashed keys in the database.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		token = strings.TrimSpace(token)
		if !ok || token == "" {
			writeError(w, r, &apperr.Error{Kind: apperr.KindUnauthorized, Code: "unauthenticated",
				Message: "send Authorization: Bearer <token>"})
			return
		}
		p, err := s.lookupToken(r.Context(), token)
		if err != nil {
			writeError(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		next.ServeHTTP(w, r.WithContext(withLogger(ctx, loggerFrom(r).With("actor", p.KeyID, "role", p.Role))))
	})
}

func (s *Server) lookupToken(ctx context.Context, token string) (Principal, error) {
	h := HashToken(token)
	scope := hex.EncodeToString(h[:12])
	for _, b := range s.bootstrap {
		if subtle.ConstantTimeCompare(h, b.hash) == 1 {
			return Principal{KeyID: "bootstrap:" + b.role + ":" + scope[:8], Role: b.role, Scope: scope}, nil
		}
	}
	row, err := store.New(s.pool).FindAPIKeyByHash(ctx, h)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, &apperr.Error{Kind: apperr.KindUnauthorized, Code: "invalid_token", Message: "the bearer token is not valid"}
	}
	if err != nil {
		return Principal{}, &apperr.Error{Kind: apperr.KindUnavailable, Code: "service_unavailable", Message: "cannot check the token right now", Err: err}
	}
	return Principal{KeyID: row.ID, Role: row.Role, Scope: scope}, nil
}

// allow lets the given roles (and admin, who may do everything) through.
func allow(roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			if p.Role == RoleAdmin {
				next.ServeHTTP(w, r)
				return
			}
			for _, role := range roles {
				if p.Role == role {
					next.ServeHTTP(w, r)
					return
				}
			}
			writeError(w, r, &apperr.Error{Kind: apperr.KindForbidden, Code: "forbidden",
				Message: "role " + p.Role + " may not call this endpoint (allowed: " + strings.Join(append([]string{RoleAdmin}, roles...), ", ") + ")"})
		})
	}
}
