// Package mailcatcher is a small SMTP server for development and tests: it accepts every message, keeps
// it (in memory, and as an .eml file when given a directory) and serves a page listing what it caught,
// so `make run` shows a person the customer emails billingd sent without a real mail server. Tests use it
// in process as the SMTP server (real SMTP through the real client library) and can make it answer a
// recipient with an SMTP error, to exercise retries (4xx) and refusals (5xx).
package mailcatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one caught email.
type Message struct {
	// Seq numbers the messages in the order they were accepted (from 1); File is its .eml ("" in memory only).
	Seq        int
	From       string
	To         []string
	Subject    string
	MessageID  string
	ReceivedAt time.Time
	Raw        []byte
	File       string
}

// Header parses the message's header.
func (m Message) Header() (mail.Header, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return nil, err
	}
	return msg.Header, nil
}

// Reply is an SMTP error the catcher answers instead of accepting.
type Reply struct {
	Code    int
	Message string
}

// Rule decides how a recipient is answered: nil accepts it, a Reply refuses it (a 4xx or 5xx code).
type Rule func(rcpt string) *Reply

// Catcher is a running catcher.
type Catcher struct {
	// Addr is the SMTP listener's host:port.
	Addr string
	dir  string
	srv  *smtp.Server

	mu       sync.Mutex
	messages []Message
	rule     Rule
	arrived  chan struct{}
}

// Options configure a catcher.
type Options struct {
	// Addr to listen on (default 127.0.0.1:0, a free port).
	Addr string
	// Dir keeps every message as <dir>/<time>-<seq>.eml (empty: memory only).
	Dir string
	// Rule answers recipients (nil: accept all).
	Rule Rule
}

// Start listens and serves SMTP until Close.
func Start(o Options) (*Catcher, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	c := &Catcher{Addr: ln.Addr().String(), dir: o.Dir, rule: o.Rule, arrived: make(chan struct{})}
	c.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{c: c}, nil }))
	c.srv.Domain = "mailcatcher.localhost"
	c.srv.MaxMessageBytes = 32 << 20
	c.srv.MaxRecipients = 50
	c.srv.ReadTimeout, c.srv.WriteTimeout = time.Minute, time.Minute
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// URL is the smtp:// URL billingd's BILLING_SMTP_URL takes to send here.
func (c *Catcher) URL() string { return "smtp://" + c.Addr }

// SetRule replaces the recipient rule (nil: accept all).
func (c *Catcher) SetRule(r Rule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rule = r
}

// Close stops the server.
func (c *Catcher) Close() error { return c.srv.Close() }

// Messages are the messages caught so far, oldest first.
func (c *Catcher) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.messages...)
}

// Wait returns once at least n messages were caught, or false after timeout.
func (c *Catcher) Wait(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		got, ch := len(c.messages), c.arrived
		c.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

func (c *Catcher) answer(rcpt string) error {
	c.mu.Lock()
	rule := c.rule
	c.mu.Unlock()
	if rule == nil {
		return nil
	}
	if r := rule(rcpt); r != nil {
		return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.NoEnhancedCode, Message: r.Message}
	}
	return nil
}

func (c *Catcher) keep(from string, to []string, raw []byte) error {
	m := Message{From: from, To: to, Raw: raw, ReceivedAt: time.Now().UTC()}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		dec := new(mime.WordDecoder)
		m.Subject = msg.Header.Get("Subject")
		if s, err := dec.DecodeHeader(m.Subject); err == nil {
			m.Subject = s
		}
		m.MessageID = strings.TrimSpace(msg.Header.Get("Message-Id"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m.Seq = len(c.messages) + 1
	if c.dir != "" {
		name := fmt.Sprintf("%s-%04d.eml", m.ReceivedAt.Format("20060102T150405"), m.Seq)
		m.File = filepath.Join(c.dir, name)
		if err := os.WriteFile(m.File, raw, 0o644); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the message"}
		}
	}
	c.messages = append(c.messages, m)
	close(c.arrived)
	c.arrived = make(chan struct{})
	return nil
}

type session struct {
	c    *Catcher
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.c.answer(to); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.to) == 0 {
		return errors.New("no recipients")
	}
	return s.c.keep(s.from, s.to, raw)
}

// Handler serves the list of caught messages at / and each message at /m/{seq} (its text parts shown,
// the raw .eml at /m/{seq}.eml); /messages.json lists them for scripts.
func (c *Catcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		msgs := c.Messages()
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].Seq > msgs[j].Seq })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = listPage.Execute(w, msgs)
	})
	mux.HandleFunc("GET /messages.json", func(w http.ResponseWriter, _ *http.Request) {
		msgs := c.Messages()
		out := make([]jsonMessage, 0, len(msgs))
		for _, m := range msgs {
			out = append(out, m.json())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /m/{seq}", func(w http.ResponseWriter, r *http.Request) {
		seq, raw := strings.CutSuffix(r.PathValue("seq"), ".eml")
		var m *Message
		for _, x := range c.Messages() {
			if fmt.Sprint(x.Seq) == seq {
				m = &x
				break
			}
		}
		if m == nil {
			http.NotFound(w, r)
			return
		}
		if raw {
			w.Header().Set("Content-Type", "message/rfc822")
			_, _ = w.Write(m.Raw)
			return
		}
		text, html := Parts(m.Raw)
		if html != "" {
			// The email's links (the customer page's button) open in a tab of their own, outside the sandbox:
			// inside the frame the page could neither run its script nor be framed (frame-ancestors 'none').
			html = `<base target="_blank">` + html
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// A string, not template.HTML: in the srcdoc attribute html/template then escapes the whole document
		// as the attribute's value, which is what srcdoc takes (as template.HTML its tags were stripped and
		// the frame showed the email's bare text). The frame is sandboxed: no script of the email runs.
		_ = messagePage.Execute(w, map[string]any{"M": m, "Text": text, "HTML": html})
	})
	return mux
}

// jsonMessage is a message as GET /messages.json lists it (oldest first), for scripts: the README's
// walk-through reads the customer-page link of the newest payment-failed email from it.
type jsonMessage struct {
	Seq         int       `json:"seq"`
	ReceivedAt  time.Time `json:"received_at"`
	From        string    `json:"from"`
	To          []string  `json:"to"`
	Subject     string    `json:"subject"`
	Kind        string    `json:"kind,omitempty"` // billingd's X-Billing-Email-Kind
	MessageID   string    `json:"message_id"`
	File        string    `json:"file,omitempty"`
	Text        string    `json:"text"`
	Attachments []string  `json:"attachments"`
}

func (m Message) json() jsonMessage {
	j := jsonMessage{Seq: m.Seq, ReceivedAt: m.ReceivedAt, From: m.From, To: m.To, Subject: m.Subject, MessageID: m.MessageID,
		File: m.File, Attachments: []string{}}
	if h, err := m.Header(); err == nil {
		j.Kind = h.Get("X-Billing-Email-Kind")
	}
	j.Text, _ = Parts(m.Raw)
	for _, p := range Leaves(m.Raw) {
		if p.Filename != "" {
			j.Attachments = append(j.Attachments, p.Filename)
		}
	}
	return j
}

var messageIDPattern = regexp.MustCompile(`^<[^<>@\s]+@[^<>@\s]+>$`)

// ValidMessageID says whether s looks like <left@right>.
func ValidMessageID(s string) bool { return messageIDPattern.MatchString(s) }

var listPage = template.Must(template.New("list").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Mail catcher</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}</style>
</head><body><h1>Mail catcher</h1>
<p>Every message billingd sent, newest first ({{len .}}). Each is also an .eml file; <a href="/messages.json">messages.json</a> lists them for scripts.</p>
<table><tr><th>#</th><th>received</th><th>to</th><th>subject</th><th>file</th></tr>
{{range .}}<tr><td>{{.Seq}}</td><td>{{.ReceivedAt.Format "2006-01-02 15:04:05Z"}}</td><td>{{range .To}}{{.}} {{end}}</td>
<td><a href="/m/{{.Seq}}">{{.Subject}}</a></td><td><a href="/m/{{.Seq}}.eml">{{if .File}}{{.File}}{{else}}.eml{{end}}</a></td></tr>
{{else}}<tr><td colspan="5">Nothing yet.</td></tr>{{end}}
</table></body></html>`))

var messagePage = template.Must(template.New("msg").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.M.Subject}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}iframe{width:100%;height:40rem;border:1px solid #ddd}</style>
</head><body><p><a href="/">all messages</a> · <a href="/m/{{.M.Seq}}.eml">raw .eml</a></p>
<h1>{{.M.Subject}}</h1>
<p>From {{.M.From}} to {{range .M.To}}{{.}} {{end}} · Message-ID {{.M.MessageID}}</p>
{{if .HTML}}<h2>HTML</h2><iframe sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="{{.HTML}}"></iframe>{{end}}
<h2>Text</h2><pre>{{.Text}}</pre>
</body></html>`))
