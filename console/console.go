package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/api"
	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/internal/apperr"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Finding is a reconciliation finding waiting for a decision, as the overview lists it.
type Finding struct {
	ID          string
	Gateway     string
	Kind        string
	OrderID     string
	OurAmount   string
	TheirAmount string
	Currency    string
	CreatedAt   time.Time
	// Actions are the resolutions this finding allows (cancel_at_gateway, dismiss).
	Actions []string
}

// FindingsReader lists open reconciliation findings, oldest first, at most limit of them, and says
// whether there are more. The reconcile package answers it (app adapts it); nil leaves the
// overview's findings panel out.
type FindingsReader func(ctx context.Context, limit int) (findings []Finding, more bool, err error)

// FindingResolver closes an open finding with one of its actions and a reason, audited under the
// signed-in person; it is what POST /v1/support/reconciliation/findings/{id}/resolve calls. Nil offers
// no resolve form.
type FindingResolver func(ctx context.Context, a billing.Actor, id, action, reason string) error

// Deps is what the console needs; app wires it.
type Deps struct {
	Pool    *pgxpool.Pool
	Log     *slog.Logger
	Billing *billing.Service
	Vault   *billingkey.Vault
	// Lookup checks a sign-in token exactly as the REST API checks a bearer token.
	Lookup api.TokenLookup
	// KeyActive says whether a session's key still authenticates; every console request asks, so a
	// revoked key's sessions end at once. Nil trusts the session until it expires.
	KeyActive func(ctx context.Context, keyID string) (bool, error)
	// Gateways are the enabled gateways' names (the list's gateway filter offers them).
	Gateways []string
	// Findings reads reconciliation findings (optional); ResolveFinding resolves one (optional).
	Findings       FindingsReader
	ResolveFinding FindingResolver
	// Now is the wall clock sessions expire by (default time.Now). Domain figures use Billing.Now(),
	// which is the test clock when it is on: a session must not expire because the test clock jumped.
	Now func() time.Time
	// SessionTTL is how long a sign-in lasts (default 8 hours: a working day).
	SessionTTL time.Duration
}

// Console serves /console.
type Console struct {
	Deps
	pages  map[string]*template.Template
	router chi.Router
}

const defaultSessionTTL = 8 * time.Hour

// New builds the console. It is mounted at /console, so its routes are relative to that prefix.
func New(d Deps) *Console {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = defaultSessionTTL
	}
	c := &Console{Deps: d, pages: parsePages()}

	r := chi.NewRouter()
	r.Use(securityHeaders)
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	r.Handle("/static/*", http.StripPrefix("/console/static/", http.FileServer(http.FS(static))))
	r.Get("/login", c.loginForm)
	r.Post("/login", c.login)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusNotFound, "Not found", "There is no console page at "+r.URL.Path+".")
	})
	r.Group(func(r chi.Router) {
		r.Use(c.requireSession, c.requireCSRF)
		r.Post("/logout", c.logout)
		r.Get("/", c.overview)
		r.Get("/delinquent", c.delinquent)
		r.Get("/analytics", c.analytics)
		r.Get("/simulate", c.simulateForm)
		r.Post("/simulate", c.simulate)
		r.Get("/customers/{id}", c.customer)
		r.Post("/invoices/{id}/{action}", c.invoiceAction)
		r.Post("/subscriptions/{id}/{action}", c.subscriptionAction)
		r.Post("/customers/{id}/dunning", c.customerDunning)
		r.Post("/findings/{id}/resolve", c.resolveFinding)
		r.With(c.adminOnly).Get("/api-keys", c.apiKeys)
	})
	c.router = r
	return c
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.router.ServeHTTP(w, r) }

// securityHeaders keeps the pages to their own origin: no framing, no inline or foreign script, no
// caching of account data.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if r.Method == http.MethodPost {
			// Forms are small: a reason, an amount, a date.
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		}
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Session *session
	Flash   *flash
	Page    any
}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
		pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return pages
}

// render writes a page. It renders into a buffer first, so a template error is a clean 500 page rather
// than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	if v.Session == nil {
		v.Session = sessionFrom(r.Context())
	}
	if v.Session != nil && v.Flash == nil {
		v.Flash = c.takeFlash(r.Context(), v.Session)
	}
	t, ok := c.pages[page]
	if !ok {
		panic("console: no template " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.Log.Error("console: render", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct {
	Status  int
	Heading string
	Message string
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	c.render(w, r, status, "error", view{Title: heading, Page: errorView{Status: status, Heading: heading, Message: message}})
}

// fail shows err as a page: a domain error says what it is (not found, invalid); anything else is logged
// and shown as a generic failure, never as an internal message.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := apperr.As(err); ok {
		switch e.Kind {
		case apperr.KindNotFound:
			c.errorPage(w, r, http.StatusNotFound, "Not found", e.Message)
			return
		case apperr.KindValidation, apperr.KindBadRequest:
			c.errorPage(w, r, http.StatusUnprocessableEntity, "Check the filters", e.Message)
			return
		}
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	c.Log.Error("console: request failed", "path", r.URL.Path, "request_id", api.RequestIDFrom(r.Context()), "err", err)
	c.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		fmt.Sprintf("The page could not be loaded. Request id %s.", api.RequestIDFrom(r.Context())))
}

func (c *Console) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := sessionFrom(r.Context()); s == nil || s.Role != api.RoleAdmin {
			c.errorPage(w, r, http.StatusForbidden, "Admins only", "This page is for admin tokens. You are signed in with a support token.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}
