// Package csvsafe writes CSV that spreadsheets open as data: a cell that begins with a character a
// spreadsheet reads as a formula (= + - @, or a tab or carriage return that hides one) is prefixed with a
// single quote, so "=HYPERLINK(...)" in a reason field shows as text instead of running (CSV injection,
// OWASP). Rows are written as they come: nothing is held beyond encoding/csv's buffer.
package csvsafe

import (
	"encoding/csv"
	"io"
)

// Writer writes escaped rows.
type Writer struct {
	w   *csv.Writer
	row []string
}

// NewWriter writes CSV (comma-separated, CRLF-free "\n" lines, RFC 4180 quoting) to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w)} }

// Cell is s as it is written: prefixed with ' when a spreadsheet would read it as a formula.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// Write writes one row.
func (w *Writer) Write(cells []string) error {
	w.row = w.row[:0]
	for _, c := range cells {
		w.row = append(w.row, Cell(c))
	}
	return w.w.Write(w.row)
}

// Flush sends what is buffered and reports any write error.
func (w *Writer) Flush() error {
	w.w.Flush()
	return w.w.Error()
}
