package pgsim

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// Card registration, as Toss's billing-auth window does it. A merchant page loads the SDK (GET
// /js/v1/payment, a stand-in for https://js.tosspayments.com/v1/payment that defines the same
// TossPayments(clientKey).requestBillingAuth('카드', {customerKey, successUrl, failUrl})), which sends the
// customer to pgsim's own page (GET /billing-auth). A person or a test types a card number there; pgsim
// then redirects to successUrl with customerKey and a fresh authKey appended, exactly as Toss does, or to
// failUrl with code and message. The authKey is bound to its customerKey: issuing a billing key for it
// under another customerKey is refused (NOT_MATCHES_CUSTOMER_KEY), so a forged redirect cannot move a
// registration to another customer. The card number chooses how the card behaves (TestCards).

// TestCard is a card number the registration page knows: what it does at registration and afterwards.
type TestCard struct {
	Number string
	// Behavior is how charges on the card go (a behavior name, as SetBehavior takes).
	Behavior string
	// Refusal, when set, refuses the registration itself: the customer is sent to failUrl with this code
	// (an IssueRefusals prefix names it).
	Refusal string
	Note    string
}

// TestCards are the numbers with a meaning. Any other number that passes the Luhn check registers a card
// that works; one that fails it is refused on the page.
var TestCards = []TestCard{
	{Number: "4242424242424242", Behavior: BehaviorOK, Note: "works"},
	{Number: "4000000000009995", Behavior: BehaviorInsufficient, Note: "registers; charges are declined for insufficient funds (soft)"},
	{Number: "4000000000000069", Behavior: BehaviorExpired, Note: "registers; charges are declined as expired (hard)"},
	{Number: "4000000000000119", Behavior: "flaky-1", Note: "registers; the first charge is declined (soft), then it works"},
	{Number: "4000000000000002", Refusal: "card-rejected", Note: "refused at registration: INVALID_REJECT_CARD"},
	{Number: "4000000000000127", Refusal: "card-number", Note: "refused at registration: INVALID_CARD_NUMBER"},
}

// DefaultClientKey is the client key pgsim's SDK accepts unless Options.ClientKey says otherwise.
const DefaultClientKey = "test_ck_sim"

// registration is an authKey the registration page handed out.
type registration struct {
	customerKey string
	behavior    string
	flaky       int
	number      string // masked
}

// Registrations counts the auth keys the registration page handed out (tests).
func (s *Server) Registrations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auths)
}

func (s *Server) clientKeyOK(k string) bool {
	want := s.opts.ClientKey
	if want == "" {
		want = DefaultClientKey
	}
	return k == want
}

// handleSDK serves the SDK stand-in. It knows where pgsim is from the request, so a page loading it from
// any address pgsim answers on is sent back to the same place.
func (s *Server) handleSDK(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	// html/template would escape the address as HTML text, not as a JavaScript string: quote it ourselves.
	b, _ := json.Marshal(base)
	_, _ = w.Write([]byte(strings.Replace(sdkJS, "BASE", string(b), 1)))
}

const sdkJS = `// pgsim: a stand-in for Toss Payments' v1 SDK (billing auth only).
(function () {
  var base = BASE;
  window.TossPayments = function (clientKey) {
    return {
      requestBillingAuth: function (method, p) {
        p = p || {};
        var q = new URLSearchParams({clientKey: clientKey, method: method || "카드", customerKey: p.customerKey || "",
          successUrl: p.successUrl || "", failUrl: p.failUrl || ""});
        if (p.customerName) q.set("customerName", p.customerName);
        window.location.href = base + "/billing-auth?" + q.toString();
        return new Promise(function () {});
      }
    };
  };
})();
`

// authRequest is what the registration page carries from the SDK to the form and back.
type authRequest struct {
	ClientKey, CustomerKey, SuccessURL, FailURL, CustomerName string
}

func readAuthRequest(v url.Values) authRequest {
	return authRequest{ClientKey: v.Get("clientKey"), CustomerKey: v.Get("customerKey"), SuccessURL: v.Get("successUrl"),
		FailURL: v.Get("failUrl"), CustomerName: v.Get("customerName")}
}

// problem says what is wrong with a registration request before any card is asked for ("" when nothing).
func (s *Server) problem(a authRequest) string {
	switch {
	case !s.clientKeyOK(a.ClientKey):
		return "INVALID_CLIENT_KEY: 클라이언트 키가 올바르지 않습니다. / The client key is not pgsim's."
	case !validCustomerKey(a.CustomerKey):
		return "INVALID_CUSTOMER_KEY: customerKey는 영문 대소문자, 숫자, -_=.@ 로 2자 이상 50자 이하입니다. / customerKey must be 2-50 of A-Z a-z 0-9 - _ = . @"
	case !absoluteURL(a.SuccessURL) || !absoluteURL(a.FailURL):
		return "INVALID_URL: successUrl과 failUrl은 http(s) 절대 주소여야 합니다. / successUrl and failUrl must be absolute http(s) URLs."
	}
	return ""
}

// validCustomerKey is Toss's rule for customerKey: 2 to 50 characters of letters, digits and -_=.@.
func validCustomerKey(k string) bool {
	if len(k) < 2 || len(k) > 50 {
		return false
	}
	for _, c := range k {
		if c > unicode.MaxASCII || !(unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("-_=.@", c)) {
			return false
		}
	}
	return true
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && len(s) <= 2048
}

type authPage struct {
	authRequest
	Problem string
	Error   string
	Number  string
	Cards   []TestCard
}

func (s *Server) renderAuth(w http.ResponseWriter, status int, p authPage) {
	p.Cards = TestCards
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"+returnOrigins(p.authRequest)+
		"; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_ = authTmpl.Execute(w, p)
}

// returnOrigins are the origins of successUrl and failUrl for the page's form-action. The form posts to
// pgsim and pgsim answers with a redirect to one of them, and browsers hold a form's redirects to the
// page's form-action too (Chromium refuses to follow a 302 to another origin under form-action 'self':
// the customer would be stuck on pgsim's page, never back at the merchant's).
func returnOrigins(a authRequest) string {
	var out []string
	for _, raw := range []string{a.SuccessURL, a.FailURL} {
		u, err := url.Parse(raw)
		if err != nil || !absoluteURL(raw) || strings.ContainsAny(u.Host, " ;,'\"\\") {
			continue
		}
		o := u.Scheme + "://" + u.Host
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " " + strings.Join(out, " ")
}

// handleAuthPage is the billing-auth window: a card form for the customer.
func (s *Server) handleAuthPage(w http.ResponseWriter, r *http.Request) {
	a := readAuthRequest(r.URL.Query())
	if p := s.problem(a); p != "" {
		s.renderAuth(w, http.StatusBadRequest, authPage{authRequest: a, Problem: p})
		return
	}
	s.renderAuth(w, http.StatusOK, authPage{authRequest: a})
}

// handleAuthSubmit takes the card: a refused card goes to failUrl, a bad number back to the form, any other
// to successUrl with a new authKey bound to the customerKey.
func (s *Server) handleAuthSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	a := readAuthRequest(r.PostForm)
	if p := s.problem(a); p != "" {
		s.renderAuth(w, http.StatusBadRequest, authPage{authRequest: a, Problem: p})
		return
	}
	if r.PostForm.Get("cancel") != "" {
		http.Redirect(w, r, withQuery(a.FailURL, "code", "PAY_PROCESS_CANCELED", "message", "사용자에 의해 결제가 취소되었습니다."), http.StatusFound)
		return
	}
	number := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return c
		}
		if c == ' ' || c == '-' {
			return -1
		}
		return 'x'
	}, r.PostForm.Get("cardNumber"))
	if len(number) < 13 || len(number) > 19 || strings.ContainsRune(number, 'x') || !luhn(number) {
		s.renderAuth(w, http.StatusUnprocessableEntity, authPage{authRequest: a, Number: r.PostForm.Get("cardNumber"),
			Error: "카드번호를 다시 확인해주세요. / Please check the card number."})
		return
	}
	behavior := BehaviorOK
	for _, c := range TestCards {
		if c.Number != number {
			continue
		}
		if c.Refusal != "" {
			ref, _ := issueRefusal(c.Refusal)
			http.Redirect(w, r, withQuery(a.FailURL, "code", ref.Code, "message", ref.Message), http.StatusFound)
			return
		}
		behavior = c.Behavior
	}
	b, flaky, _ := parseBehavior(behavior)
	s.mu.Lock()
	authKey := "sim_auth_" + s.randString(alnum, 32)
	s.auths[authKey] = &registration{customerKey: a.CustomerKey, behavior: b, flaky: flaky,
		number: number[:6] + strings.Repeat("*", len(number)-9) + number[len(number)-3:]}
	s.mu.Unlock()
	s.log.Info("pgsim card registered", "customer_key", a.CustomerKey, "behavior", b)
	http.Redirect(w, r, withQuery(a.SuccessURL, "customerKey", a.CustomerKey, "authKey", authKey), http.StatusFound)
}

// withQuery appends parameters to a URL that may already carry some, as Toss appends its own.
func withQuery(base string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

func luhn(n string) bool {
	sum, double := 0, false
	for i := len(n) - 1; i >= 0; i-- {
		d := int(n[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

var authTmpl = template.Must(template.New("auth").Parse(`<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgsim 카드 등록 / Card registration</title>
<style>
body{font-family:system-ui,"Noto Sans KR",sans-serif;background:#f2f4f6;margin:0;color:#191f28}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:12px;padding:1.5rem 1.75rem;box-shadow:0 2px 10px rgba(0,0,0,.06)}
h1{font-size:1.2rem;margin:0 0 .25rem}p.sub{color:#6b7684;margin:0 0 1.25rem;font-size:.9rem}
label{display:block;font-size:.85rem;color:#4e5968;margin:.8rem 0 .3rem}input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #d1d6db;border-radius:8px}
.row{display:flex;gap:.75rem}.row>div{flex:1}button{margin-top:1.25rem;padding:.7rem 1rem;font-size:1rem;border-radius:8px;border:0}
#register{background:#3182f6;color:#fff;width:100%}#cancel{background:none;color:#6b7684;width:100%;margin-top:.5rem}
.error{background:#ffeeee;color:#d22030;padding:.6rem;border-radius:8px}table{font-size:.8rem;color:#6b7684;margin-top:1.25rem;border-collapse:collapse}td{padding:.15rem .4rem}
</style></head><body><main>
<h1>카드 등록 / Register a card</h1>
<p class="sub">pgsim — 테스트 결제대행 / a test payment gateway. 실제 카드를 입력하지 마세요. / Do not enter a real card.</p>
{{if .Problem}}<p class="error" id="problem">{{.Problem}}</p>{{else}}
{{with .Error}}<p class="error" id="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/billing-auth" autocomplete="off">
<input type="hidden" name="clientKey" value="{{.ClientKey}}"><input type="hidden" name="customerKey" value="{{.CustomerKey}}">
<input type="hidden" name="successUrl" value="{{.SuccessURL}}"><input type="hidden" name="failUrl" value="{{.FailURL}}">
<input type="hidden" name="customerName" value="{{.CustomerName}}">
<label for="cardNumber">카드번호 / Card number</label><input id="cardNumber" name="cardNumber" inputmode="numeric" value="{{.Number}}" placeholder="4242 4242 4242 4242">
<div class="row"><div><label for="expiry">유효기간 / Expiry (MM/YY)</label><input id="expiry" name="expiry" placeholder="12/30"></div>
<div><label for="birth">생년월일 / Birth date (YYMMDD)</label><input id="birth" name="birth" placeholder="900101"></div></div>
<button type="submit" id="register" name="register" value="1">등록 / Register</button>
<button type="submit" id="cancel" name="cancel" value="1">취소 / Cancel</button>
</form>
<table><tr><td colspan="2">테스트 카드 / Test cards</td></tr>{{range .Cards}}<tr><td>{{.Number}}</td><td>{{.Note}}</td></tr>{{end}}</table>
{{end}}
</main></body></html>
`))
