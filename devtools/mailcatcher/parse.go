package mailcatcher

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Part is one leaf of a MIME message, decoded.
type Part struct {
	ContentType string
	// Filename is set for an attachment.
	Filename string
	Body     []byte
}

// Parts returns a message's plain-text and HTML bodies (empty when it has none).
func Parts(raw []byte) (text, html string) {
	for _, p := range Leaves(raw) {
		switch {
		case p.Filename != "":
		case p.ContentType == "text/plain" && text == "":
			text = string(p.Body)
		case p.ContentType == "text/html" && html == "":
			html = string(p.Body)
		}
	}
	return text, html
}

// Leaves walks a message's MIME tree and returns its leaves, transfer-decoded.
func Leaves(raw []byte) []Part {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	var out []Part
	walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Header.Get("Content-Disposition"), msg.Body, &out)
	return out
}

func walk(ctype, enc, disp string, body io.Reader, out *[]Part) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p, out)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(r)
	part := Part{ContentType: mt, Body: b}
	if _, dp, err := mime.ParseMediaType(disp); err == nil {
		part.Filename = dp["filename"]
	}
	if part.Filename == "" && params["name"] != "" && !strings.HasPrefix(mt, "text/") {
		part.Filename = params["name"]
	}
	*out = append(*out, part)
}

// newlineStripper drops CR and LF so base64 lines decode as one stream.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	buf := make([]byte, len(p))
	k, err := n.r.Read(buf)
	j := 0
	for _, c := range buf[:k] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	if j == 0 && err == nil && k > 0 {
		return n.Read(p)
	}
	return j, err
}
