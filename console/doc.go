// Package console is the support console: server-rendered HTML under /console where support staff find
// delinquent accounts and get them paying again. It is a second face on the same code, not a second
// implementation: every list reads through billing's and billingkey's service methods, and every action
// (retry, mark paid, void, write off, extend grace, pause or resume dunning, cancel) calls the very billing
// method the REST endpoint calls, with an Actor whose origin is "console", so the audit log cannot tell a
// click from a curl except by that origin. What is offered on a page is what the billing package says is
// allowed from the current state, so an illegal action is never a button.
//
// People sign in with a support or admin API token, checked by the API's own token lookup. The token is
// not kept: a random session id goes into an HttpOnly, SameSite=Strict cookie, and its hash, with the key
// id and role the token resolved to, into console_sessions. Every state-changing form carries the
// session's CSRF token; a POST without it is refused before anything runs. Templates are html/template and
// assets are embedded, so billingd serves the console with no build step and no third-party script.
package console
