package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/audit"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/store"
)

const (
	sessionCookie = "console_session"
	// loginCookie carries the sign-in form's CSRF token (double submit): there is no session yet to keep
	// it in, and it stops another site from signing a browser in with the attacker's token.
	loginCookie = "console_login"
	csrfField   = "csrf"
)

// session is a signed-in person: what their token resolved to, never the token.
type session struct {
	idHash []byte
	KeyID  string
	Role   string
	CSRF   string
	flash  *flash
}

type flash struct {
	Kind    string // ok or error
	Message string
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// actor is the audit log's view of the person: the API key they signed in with, marked as the console's.
func actor(r *http.Request) billing.Actor {
	s := sessionFrom(r.Context())
	return billing.Actor{ID: "console:" + s.KeyID, Role: s.Role, RequestID: api.RequestIDFrom(r.Context()), Origin: audit.OriginConsole}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

type loginView struct {
	CSRF  string
	Error string
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	token := randomToken()
	setCookie(w, r, loginCookie, token, 3600)
	c.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Page: loginView{CSRF: token}})
}

// login checks the token with the API's own lookup and starts a session for a support or admin key.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		token := randomToken()
		setCookie(w, r, loginCookie, token, 3600)
		c.render(w, r, status, "login", view{Title: "Sign in", Page: loginView{CSRF: token, Error: msg}})
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "The form could not be read.")
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(ck.Value, r.PostFormValue(csrfField)) {
		fail(http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		fail(http.StatusUnprocessableEntity, "Paste a support or admin API token.")
		return
	}
	p, err := c.Lookup(r.Context(), token)
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindUnauthorized {
			fail(http.StatusUnauthorized, "That token is not valid.")
			return
		}
		c.Log.Error("console: sign-in lookup", "err", err)
		fail(http.StatusServiceUnavailable, "The token cannot be checked right now. Try again in a moment.")
		return
	}
	if p.Role != api.RoleSupport && p.Role != api.RoleAdmin {
		fail(http.StatusForbidden, "The console is for support and admin tokens; this is a "+p.Role+" token.")
		return
	}
	now := c.Now().UTC()
	q := store.New(c.Pool)
	if _, err := q.ReapSessions(r.Context(), now); err != nil {
		c.Log.Warn("console: reap sessions", "err", err)
	}
	id := randomToken()
	if err := q.CreateSession(r.Context(), store.CreateSessionParams{IDHash: hashID(id), KeyID: p.KeyID, Role: p.Role,
		Scope: p.Scope, CsrfToken: randomToken(), CreatedAt: now, ExpiresAt: now.Add(c.SessionTTL)}); err != nil {
		c.Log.Error("console: create session", "err", err)
		fail(http.StatusServiceUnavailable, "The sign-in could not be saved. Try again in a moment.")
		return
	}
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, id, int(c.SessionTTL.Seconds()))
	c.Log.Info("console: signed in", "actor", p.KeyID, "role", p.Role)
	seeOther(w, r, "/console")
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	if err := store.New(c.Pool).DeleteSession(r.Context(), s.idHash); err != nil {
		c.fail(w, r, err)
		return
	}
	setCookie(w, r, sessionCookie, "", -1)
	seeOther(w, r, "/console/login")
}

// requireSession sends anyone without a live session to the sign-in page.
func (c *Console) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			seeOther(w, r, "/console/login")
			return
		}
		row, err := store.New(c.Pool).GetSession(r.Context(), store.GetSessionParams{IDHash: hashID(ck.Value), Now: c.Now().UTC()})
		if errors.Is(err, pgx.ErrNoRows) {
			setCookie(w, r, sessionCookie, "", -1)
			seeOther(w, r, "/console/login")
			return
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if c.KeyActive != nil {
			active, err := c.KeyActive(r.Context(), row.KeyID)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			if !active {
				// The key was revoked (or its bootstrap token removed): the session ends here.
				if err := store.New(c.Pool).DeleteSession(r.Context(), row.IDHash); err != nil {
					c.Log.Warn("console: end a revoked key's session", "err", err)
				}
				c.Log.Info("console: session of a revoked key ended", "actor", row.KeyID)
				setCookie(w, r, sessionCookie, "", -1)
				seeOther(w, r, "/console/login")
				return
			}
		}
		s := &session{idHash: row.IDHash, KeyID: row.KeyID, Role: row.Role, CSRF: row.CsrfToken}
		if row.Flash != nil {
			s.flash = &flash{Kind: deref(row.FlashKind), Message: *row.Flash}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// requireCSRF refuses a state-changing request whose form does not carry the session's CSRF token,
// before any handler runs: a forged post changes nothing.
func (c *Console) requireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		s := sessionFrom(r.Context())
		if err := r.ParseForm(); err != nil || !sameToken(s.CSRF, r.PostFormValue(csrfField)) {
			c.Log.Warn("console: refused a form without a valid CSRF token", "path", r.URL.Path, "actor", s.KeyID)
			c.errorPage(w, r, http.StatusForbidden, "Form refused",
				"This form did not carry a valid security token, so nothing was changed. Reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func sameToken(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// setFlash keeps an action's result for the page the browser is redirected to.
func (c *Console) setFlash(ctx context.Context, s *session, kind, msg string) {
	if err := store.New(c.Pool).SetFlash(ctx, store.SetFlashParams{IDHash: s.idHash, Kind: &kind, Message: &msg}); err != nil {
		c.Log.Warn("console: keep flash", "err", err)
	}
}

// takeFlash returns the pending flash once.
func (c *Console) takeFlash(ctx context.Context, s *session) *flash {
	f := s.flash
	if f == nil {
		return nil
	}
	s.flash = nil
	if err := store.New(c.Pool).ClearFlash(ctx, s.idHash); err != nil {
		c.Log.Warn("console: clear flash", "err", err)
	}
	return f
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
