package jobs

import (
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dunningworks/billing/billing"
)

// uniqueness: one job per (kind, entity, due time) among jobs that are waiting or running. Completed jobs
// do not block a new one: the row says whether work is still due, so a rerun is a no-op, and a job that
// completed early (or was lost) can always be recreated by the sweeper.
var uniqueness = river.UniqueOpts{
	ByArgs: true,
	ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable},
}

// WorkArgs are the arguments of every domain job: which entity, and the due time that identifies the step.
type WorkArgs struct {
	ID  string    `json:"id"`
	Due time.Time `json:"due"`
}

// RenewArgs renews a subscription.
type RenewArgs WorkArgs

// Kind is River's job kind.
func (RenewArgs) Kind() string { return string(billing.WorkRenew) }

// InsertOpts makes the job unique per (subscription, period end), and runs renewals after every other
// runnable domain job: on billing day the queue holds every due renewal, and River runs a queue oldest
// first within a priority, so a lookup of an unknown outcome, a retry or a dunning step falling due then
// waited for the whole backlog (cmd/bench: lookups waited 5 minutes, the length of the run). Work on
// money already in flight goes before starting new renewals.
func (RenewArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness, Priority: renewPriority}
}

// renewPriority is River's priority for renewals (1 is the highest, and every other job's default).
const renewPriority = 2

// RenewBatchArgs renews due subscriptions a batch at a time (billing.RenewBatch). Renewals are driven by
// the column, not by a job per subscription: the sweeper enqueues up to renewBatchJobs of these while
// renewals are due, one per slot, unique per slot, and each claims whatever is due (FOR UPDATE SKIP
// LOCKED), so slots and replicas share the day without overlapping.
type RenewBatchArgs struct {
	Slot int `json:"slot"`
}

func (RenewBatchArgs) Kind() string { return "renew_batch" }
func (RenewBatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness, Priority: renewPriority}
}

// CollectArgs retries an invoice's charge.
type CollectArgs WorkArgs

func (CollectArgs) Kind() string                 { return string(billing.WorkCollect) }
func (CollectArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{UniqueOpts: uniqueness} }

// ResolveAttemptArgs looks up an attempt whose outcome is pending or unknown.
type ResolveAttemptArgs WorkArgs

func (ResolveAttemptArgs) Kind() string { return string(billing.WorkResolveAttempt) }
func (ResolveAttemptArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// ResolveRefundArgs looks up (or first sends) a refund whose outcome is pending or unknown.
type ResolveRefundArgs WorkArgs

func (ResolveRefundArgs) Kind() string { return string(billing.WorkResolveRefund) }
func (ResolveRefundArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// GraceEndArgs suspends a subscription whose grace is over.
type GraceEndArgs WorkArgs

func (GraceEndArgs) Kind() string                 { return string(billing.WorkGraceEnd) }
func (GraceEndArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{UniqueOpts: uniqueness} }

// DunningEndArgs applies the final action when the dunning window is over.
type DunningEndArgs WorkArgs

func (DunningEndArgs) Kind() string                 { return string(billing.WorkDunningEnd) }
func (DunningEndArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{UniqueOpts: uniqueness} }

// ExpireIncompleteArgs expires a subscription whose first payment never succeeded.
type ExpireIncompleteArgs WorkArgs

func (ExpireIncompleteArgs) Kind() string { return string(billing.WorkExpireIncomplete) }
func (ExpireIncompleteArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: uniqueness}
}

// SweepArgs is the periodic sweeper's job.
type SweepArgs struct{}

func (SweepArgs) Kind() string { return "sweep" }

// argsFor maps billing's Work to River job arguments.
func argsFor(w billing.Work) river.JobArgs {
	a := WorkArgs{ID: w.ID, Due: w.At.UTC()}
	switch w.Kind {
	case billing.WorkRenew:
		return RenewArgs(a)
	case billing.WorkCollect:
		return CollectArgs(a)
	case billing.WorkResolveAttempt:
		return ResolveAttemptArgs(a)
	case billing.WorkResolveRefund:
		return ResolveRefundArgs(a)
	case billing.WorkGraceEnd:
		return GraceEndArgs(a)
	case billing.WorkDunningEnd:
		return DunningEndArgs(a)
	case billing.WorkExpireIncomplete:
		return ExpireIncompleteArgs(a)
	case billing.WorkProcessWebhook:
		return ProcessWebhookArgs(a)
	}
	panic("jobs: unknown work kind " + string(w.Kind))
}
