package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/store"
)

// cursorName is the fan-out's row in notify_cursor.
const cursorName = "webhooks"

// maxRounds bounds one FanOut call: a backlog drains over several runs instead of one endless job.
const maxRounds = 20

// FanOutResult says what one FanOut call did.
type FanOutResult struct {
	// Events is how many outbox events the cursor passed; Deliveries how many delivery rows were created.
	Events     int
	Deliveries int
	// Retries is how many due retries were enqueued.
	Retries int
	// Busy means another replica holds the cursor; Waiting means the cursor stopped at a missing seq.
	Busy    bool
	Waiting bool
}

// FanOut reads the outbox past the cursor, in seq order, creates one delivery per subscribed enabled
// endpoint and enqueues its first attempt, all in the transaction that moves the cursor; then it
// enqueues the retries that have come due. Only one FanOut runs at a time across replicas (the cursor row
// is taken FOR UPDATE SKIP LOCKED), and rerunning after a crash creates nothing twice (the deliveries'
// unique key).
//
// The cursor never passes a seq that could still commit. A bigserial is drawn at insert time, so a
// transaction that inserted seq 7 and commits after the one that inserted seq 8 leaves 7 missing for a
// moment; 7 may also never come (its transaction rolled back). When a visible seq lies beyond a missing
// one, the fan-out stops there and remembers the snapshot taken just after it read: every transaction
// that could still commit the missing seq was in progress in that snapshot. Once all of those have
// ended and GapGrace has passed, a still-missing seq was rolled back and is skipped; a transaction left
// open longer than GapTimeout is given up on (logged as an error and counted), so one stuck session
// cannot stop every webhook.
func (s *Service) FanOut(ctx context.Context) (FanOutResult, error) {
	var res FanOutResult
	if s.enq == nil {
		return res, errors.New("notify: no enqueuer installed")
	}
	for range maxRounds {
		more, err := s.fanOutBatch(ctx, &res)
		if err != nil {
			return res, err
		}
		if !more {
			break
		}
	}
	n, err := s.enqueueDue(ctx)
	res.Retries = n
	return res, err
}

// fanOutBatch does one transaction's worth of fan-out and reports whether more events may be waiting.
func (s *Service) fanOutBatch(ctx context.Context, res *FanOutResult) (more bool, err error) {
	err = dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q(tx)
		cur, err := q.LockCursor(ctx, cursorName)
		if errors.Is(err, pgx.ErrNoRows) {
			// Another replica is fanning out (or the row is missing: recreate it; the next run uses it).
			res.Busy = true
			return q.EnsureCursor(ctx, cursorName)
		}
		if err != nil {
			return fmt.Errorf("lock notify cursor: %w", err)
		}
		events, err := q.EventsAfter(ctx, store.EventsAfterParams{After: cur.Seq, Max: int32(s.t.Batch)})
		if err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		g := gap{seq: cur.GapSeq, snapshot: cur.GapSnapshot, seenAt: cur.GapSeenAt}
		upto := cur.Seq
		stopped := false
	walk:
		for _, e := range events {
			if missing := upto + 1; e.Seq != missing {
				pass, err := s.passGap(ctx, q, &g, missing, e.Seq, cur.DbNow)
				if err != nil {
					return err
				}
				if !pass {
					stopped = true
					break walk
				}
			}
			upto = e.Seq
			res.Events++
		}
		if g.seq != nil && *g.seq <= upto {
			g = gap{} // the missing seq committed (or was skipped): nothing to wait for
		}
		if upto > cur.Seq {
			created, err := q.CreateDeliveries(ctx, store.CreateDeliveriesParams{Now: s.wall.Now(), FromSeq: cur.Seq, ToSeq: upto})
			if err != nil {
				return fmt.Errorf("create deliveries: %w", err)
			}
			tickets := make([]Ticket, 0, len(created))
			for _, id := range created {
				tickets = append(tickets, Ticket{DeliveryID: id, Attempt: 1})
			}
			if err := s.enq.EnqueueTx(ctx, tx, tickets...); err != nil {
				return err
			}
			res.Deliveries += len(created)
			s.metrics.fannedOut.Add(float64(upto - cur.Seq))
		}
		if err := q.SetCursor(ctx, store.SetCursorParams{Name: cursorName, Seq: upto, GapSeq: g.seq, GapSnapshot: g.snapshot,
			GapSeenAt: g.seenAt}); err != nil {
			return fmt.Errorf("move notify cursor: %w", err)
		}
		res.Waiting = stopped
		more = !stopped && len(events) == s.t.Batch
		return nil
	})
	return more, err
}

type gap struct {
	seq      *int64
	snapshot *string
	seenAt   *time.Time
}

// passGap decides whether the cursor may move past the missing seqs [missing, next). The first time a gap
// is seen it records the snapshot and waits; later runs pass it once it can no longer be filled.
func (s *Service) passGap(ctx context.Context, q *store.Queries, g *gap, missing, next int64, now time.Time) (bool, error) {
	if g.seq == nil || *g.seq != missing || g.snapshot == nil || g.seenAt == nil {
		snap, err := q.CurrentSnapshot(ctx)
		if err != nil {
			return false, fmt.Errorf("snapshot at outbox gap: %w", err)
		}
		*g = gap{seq: &missing, snapshot: &snap, seenAt: &now}
		return false, nil
	}
	waited := now.Sub(*g.seenAt)
	if waited < s.t.GapGrace {
		return false, nil
	}
	finished, err := q.SnapshotFinished(ctx, *g.snapshot)
	if err != nil {
		return false, fmt.Errorf("check outbox gap: %w", err)
	}
	switch {
	case finished:
		s.metrics.gaps.WithLabelValues("rolled_back").Add(float64(next - missing))
		s.log.DebugContext(ctx, "outbox gap skipped: its transaction rolled back", "from_seq", missing, "to_seq", next-1)
	case waited >= s.t.GapTimeout:
		s.metrics.gaps.WithLabelValues("timeout").Add(float64(next - missing))
		s.log.ErrorContext(ctx, "outbox gap skipped after waiting for a transaction that is still open: if it commits, its events are not delivered",
			"from_seq", missing, "to_seq", next-1, "waited", waited.String())
	default:
		return false, nil
	}
	*g = gap{}
	return true, nil
}

// enqueueDue enqueues a ticket for every pending delivery whose next attempt is due. A delivery whose
// ticket is already queued or running is not duplicated (the Enqueuer's uniqueness), and one whose job
// was lost is picked up again here: the row, not the queue, says what is due.
func (s *Service) enqueueDue(ctx context.Context) (int, error) {
	n := 0
	err := dbx.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := s.q(tx).DueDeliveries(ctx, store.DueDeliveriesParams{Now: s.wall.Now(), Max: 1000})
		if err != nil {
			return fmt.Errorf("due deliveries: %w", err)
		}
		tickets := make([]Ticket, 0, len(rows))
		for _, r := range rows {
			tickets = append(tickets, Ticket{DeliveryID: r.ID, Attempt: int(r.Attempts) + 1})
		}
		n = len(tickets)
		return s.enq.EnqueueTx(ctx, tx, tickets...)
	})
	return n, err
}
