//go:build chaos_break_resend

package billing

// This build resends an unresolved attempt under a NEW order id and idempotency key — the classic
// double-charge bug. Only `go run ./cmd/chaos -tags chaos_break_resend` builds it, to show the chaos
// suite catches it.
const (
	breakResend     = true
	breakReconciler = false
)
