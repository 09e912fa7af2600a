// Package audit is the insert-only record of what people did to accounts: who (actor and role), what
// (action and target), why (a required reason), the target before and after, and where the request came
// from (request id, origin: api, console or cli). Writers call Write inside the transaction that makes the
// change, so a change without its audit row cannot commit, and an audit row cannot outlive a rolled-back
// change. The table refuses UPDATE, DELETE and TRUNCATE (a trigger in the schema), so the record cannot
// be edited after the fact, not even by this service.
package audit
