//go:build !chaos_break_resend && !chaos_break_reconciler

package billing

// Deliberate breakage for proving the chaos suite bites (see README "Chaos"): off in every normal build.
const (
	breakResend     = false
	breakReconciler = false
)
