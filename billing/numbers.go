package billing

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DefaultInvoicePrefix is the document-number prefix when none is configured.
const DefaultInvoicePrefix = "INV"

// Document series: invoices are numbered under the merchant's prefix, credit notes under prefix-CN, each
// its own gapless sequence.
const (
	SeriesInvoice    = ""
	SeriesCreditNote = "-CN"
)

// NextNumber takes the next number of a document series (SeriesInvoice, SeriesCreditNote) under the
// merchant's prefix, e.g. "INV-000042". It must run inside the transaction that finalizes the document:
// the counter row stays locked until that transaction ends, so numbers are gapless (a rollback returns
// the number) and unique across replicas. Take it last, after the document's own row locks, and commit
// soon: every finalizer of the prefix waits for the lock.
func (s *Service) NextNumber(ctx context.Context, tx pgx.Tx, series string) (string, error) {
	prefix := s.prefix + series
	n, err := s.q(tx).NextDocumentNumber(ctx, prefix)
	if err != nil {
		return "", fmt.Errorf("next %s number: %w", prefix, err)
	}
	return documentNumber(prefix, n), nil
}

func documentNumber(prefix string, n int64) string { return fmt.Sprintf("%s-%06d", prefix, n) }
