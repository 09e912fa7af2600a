package web

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/mail"
	"github.com/dunningworks/billing/portal"
)

// expired answers an expired link: 410, nothing of the account, and (when emails are on) a button that
// emails the customer a fresh link at the address on file.
func (h *Handler) expired(w http.ResponseWriter, r *http.Request, l portal.Link) {
	day := l.ExpiresAt.In(kst).Format("2006-01-02")
	v := view{Heading: "링크가 만료되었습니다 / This link has expired",
		Message: "이 링크는 " + day + "에 만료되었습니다. / It expired on " + day + "."}
	if h.Mailer != nil {
		v.Fresh, v.Token, v.CSRF = true, chi.URLParam(r, "token"), h.csrf(w, r)
		v.Message += " 아래 버튼을 누르시면 등록된 이메일로 새 링크를 보내 드립니다. / Press the button below and we will email a new link to the address we have for you."
	} else {
		v.Message += " 최근 이메일의 링크를 사용해 주세요. / Please use the link in our most recent email."
	}
	h.render(w, http.StatusGone, v)
}

// freshLink emails a new link to the customer of an expired one (POST /c/{token}/link, CSRF-protected).
// The address is the one on file, never one the asker gives, and mail rate-limits it per customer, so an
// old link cannot be used to flood the customer's inbox. A link that still works just opens the page.
func (h *Handler) freshLink(w http.ResponseWriter, r *http.Request) {
	tok := chi.URLParam(r, "token")
	l, err := h.Links.Verify(tok)
	switch {
	case err == nil:
		http.Redirect(w, r, h.Links.PageURL(tok), http.StatusSeeOther)
		return
	case !errors.Is(err, portal.ErrLinkExpired):
		h.link(w, r) // answers 404 as for the page
		return
	}
	c, cerr := r.Cookie(csrfCookie)
	if cerr != nil || r.ParseForm() != nil || len(c.Value) < 32 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		h.message(w, http.StatusForbidden, "다시 시도해 주세요 / Please try again", "양식이 만료되었습니다. 페이지를 새로 고쳐 주세요. / The form expired; reload the page.")
		return
	}
	if h.Mailer == nil {
		h.message(w, http.StatusNotFound, "찾을 수 없습니다 / Not found", "새 링크를 이메일로 보낼 수 없습니다. / A new link cannot be emailed.")
		return
	}
	to, err := h.Mailer.RequestLink(r.Context(), l.CustomerID, h.Clock.Now())
	switch {
	case err == nil:
		h.message(w, http.StatusOK, "새 링크를 보냈습니다 / We sent you a new link",
			to+"(으)로 새 링크를 보냈습니다. 받은편지함을 확인해 주세요. / We emailed a new link to "+to+". Please check your inbox.")
	case errors.Is(err, mail.ErrLinkRateLimited):
		w.Header().Set("Retry-After", "600")
		h.message(w, http.StatusTooManyRequests, "이미 새 링크를 보냈습니다 / A new link was sent recently",
			"최근에 새 링크를 보내 드렸습니다. 받은편지함(스팸함 포함)을 확인하시고, 잠시 후 다시 시도해 주세요. / "+
				"We sent you a new link a short while ago. Please check your inbox (and spam folder), or try again later.")
	case errors.Is(err, mail.ErrLinkUnavailable):
		h.message(w, http.StatusConflict, "이메일을 보낼 수 없습니다 / We cannot email you",
			"새 링크를 이메일로 보낼 수 없습니다. 판매자에게 문의해 주세요. / We cannot email you a new link. Please contact the merchant.")
	default:
		h.fail(w, r, err)
	}
}
