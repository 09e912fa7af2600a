package api

import (
	"bufio"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/internal/csvsafe"
)

// mountExports registers the accountants' CSV exports (support, admin): invoices, payment attempts and
// credit notes created in ?from=&to= (docs/analytics.md#csv-exports).
func (s *Server) mountExports(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(allow(RoleSupport))
		r.Get("/v1/exports/invoices.csv", s.export(billing.ExportInvoices))
		r.Get("/v1/exports/attempts.csv", s.export(billing.ExportAttempts))
		r.Get("/v1/exports/credit-notes.csv", s.export(billing.ExportCreditNotes))
	})
}

// export streams one export as text/csv: the header row, then rows as the database pages them in. A bad
// range is a 422 before anything is sent; a failure after the first byte aborts the response (the client
// sees a broken transfer, never a short file that looks complete).
func (s *Server) export(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rg, err := s.Billing.ExportRange(q.Get("from"), q.Get("to"))
		if err != nil {
			writeError(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+kind+"-"+rg.From.Format("20060102T150405Z")+"-"+rg.To.Format("20060102T150405Z")+`.csv"`)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		buf := bufio.NewWriterSize(w, 32<<10)
		cw := csvsafe.NewWriter(buf)
		rc := http.NewResponseController(w)
		rows := 0
		fail := func(err error) {
			loggerFrom(r).Error("export failed mid-stream", "kind", kind, "err", err)
			panic(http.ErrAbortHandler)
		}
		if err := cw.Write(billing.ExportColumns[kind]); err != nil {
			fail(err)
		}
		err = s.Billing.Export(r.Context(), kind, rg, func(row []string) error {
			if err := cw.Write(row); err != nil {
				return err
			}
			if rows++; rows%500 == 0 {
				if err := cw.Flush(); err != nil {
					return err
				}
				if err := buf.Flush(); err != nil {
					return err
				}
				_ = rc.Flush()
			}
			return nil
		})
		if err == nil {
			err = cw.Flush()
		}
		if err == nil {
			err = buf.Flush()
		}
		if err != nil {
			fail(err)
		}
	}
}
