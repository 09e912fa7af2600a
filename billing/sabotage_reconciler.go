//go:build chaos_break_reconciler

package billing

// This build never resolves an unknown outcome — the reconciler is switched off. Only
// `go run ./cmd/chaos -tags chaos_break_reconciler` builds it, to show the chaos suite catches it.
const (
	breakResend     = false
	breakReconciler = true
)
