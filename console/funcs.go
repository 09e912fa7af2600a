package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"
)

// funcs are the templates' helpers. None of them returns template.HTML: everything a page shows goes
// through html/template's escaping.
var funcs = template.FuncMap{
	"amount":   amount,
	"when":     when,
	"day":      day,
	"ago":      ago,
	"pct":      pct,
	"pctf":     pctf,
	"label":    label,
	"short":    short,
	"summary":  summary,
	"inputAt":  inputAt,
	"contains": func(list []string, s string) bool { return contains(list, s) },
	"add":      func(a, b int) int { return a + b },
	"list":     func(s ...string) []string { return s },
	"str":      deref,
}

// amount groups an amount's digits for reading: "1234567.50" -> "1,234,567.50".
func amount(a string) string {
	sign := ""
	if strings.HasPrefix(a, "-") {
		sign, a = "-", a[1:]
	}
	whole, frac, hasFrac := strings.Cut(a, ".")
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// when shows a time in UTC to the minute; nil and zero show a dash.
func when(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func day(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return "—"
	}
	return t.UTC().Format("2006-01-02")
}

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}

// ago says how far t is from now, in the largest whole unit ("3 d ago", "in 5 h").
func ago(v any, now time.Time) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d.Hours()))
	default:
		s = fmt.Sprintf("%d d", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func pct(num, den int) string {
	if den == 0 {
		return "—"
	}
	return fmt.Sprintf("%d%%", (200*num+den)/(2*den)) // rounded half up, in integers
}

// label turns an identifier into words: "past_due" -> "past due", "write-off" -> "write off".
func label(s string) string {
	return strings.NewReplacer("_", " ", "-", " ", ".", " ").Replace(s)
}

// short trims a long string for a table cell.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// summary renders an event's or audit row's JSON as "key: value" pairs, scalars only, sorted.
func summary(raw json.RawMessage) string {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		switch v.(type) {
		case map[string]any, []any, nil:
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %v", label(k), m[k]))
	}
	return short(strings.Join(parts, " · "), 240)
}

// inputAt is a time as a datetime-local input wants it (UTC; the form says so).
func inputAt(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// pctf shows a fraction (0.3333) as a percentage with one decimal ("33.3%").
func pctf(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
}
