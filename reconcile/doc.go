// Package reconcile compares, for a window of time and one gateway, what the gateway says it collected
// (its transaction list) with what we say we collected (our succeeded attempts and what the ledger holds
// for each at the gateway's clearing account), and stores every disagreement as a finding for support:
// missing_here (the gateway holds money we have not booked), missing_there (we booked money the gateway
// does not hold) and amount_mismatch.
//
// The transaction list only proposes disagreements; each one is confirmed by looking the order up at the
// gateway before it becomes a finding. That makes a run robust to what windows cannot settle: a charge
// stamped just before midnight by one clock and just after it by the other, a refund booked on a later day,
// or a gateway (the simulator under the test clock) whose clock is not ours. Findings are unique per
// (gateway, kind, order id), so reconciling a window again adds nothing new.
//
// The package reads payments and the ledger through billing (Payments), never from billing's tables, and
// changes neither: nothing is corrected automatically. The one action with an effect, cancelling at the
// gateway a charge we never asked for, is taken only when support resolves a finding with it, and is
// audited.
package reconcile
