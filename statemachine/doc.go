// Package statemachine holds the three explicit state machines of the billing
// domain — invoice, payment attempt and subscription — and is the only place
// where their legal transitions are written down. Other packages never assign
// a status directly: they load the row, call FireInvoice, FireAttempt or
// FireSubscription with the row's current status and a trigger, and persist
// the returned status inside the same transaction with a compare-and-set on
// the previous value (UPDATE ... WHERE id = $1 AND status = $2) or under
// SELECT ... FOR UPDATE. The machines are built on qmuntal/stateless with
// external storage and are configured once at package initialisation; the
// state of a single fire lives in the caller's row, carried to stateless
// through the context, so one configured machine serves every goroutine. An
// illegal trigger, including one refused by a guard such as "void only when
// nothing was collected", returns an *IllegalTransitionError that names the
// current state and the triggers allowed from it, which the REST layer turns
// into a 409. The DOT graphs in docs/statemachines are generated from the same
// configuration (UPDATE_GRAPHS=1 go test ./statemachine -run
// TestGraphsAreCurrent) and a test fails when they go stale.
package statemachine
