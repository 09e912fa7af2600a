-- Support's per-customer dunning overrides (billing/dunning_override.go, docs/dunning.md).

-- name: GetDunningOverride :one
SELECT * FROM dunning_overrides WHERE customer_id = $1;

-- name: UpsertDunningOverride :one
INSERT INTO dunning_overrides (customer_id, mode, policy, reason, set_by, set_at)
VALUES (@customer_id, @mode, sqlc.narg(policy), @reason, @set_by, @set_at)
ON CONFLICT (customer_id) DO UPDATE SET
    mode = EXCLUDED.mode, policy = EXCLUDED.policy, reason = EXCLUDED.reason,
    set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at
RETURNING *;

-- name: DeleteDunningOverride :exec
DELETE FROM dunning_overrides WHERE customer_id = $1;

-- name: CustomerSubscriptionIDs :many
-- The customer's subscriptions that can still be charged (not ended), oldest first.
SELECT id FROM subscriptions
WHERE customer_id = $1 AND status NOT IN ('canceled', 'incomplete_expired')
ORDER BY created_at, id;

-- name: RecordExemptionPause :exec
INSERT INTO dunning_exemption_pauses (subscription_id, customer_id, paused_at)
VALUES (@subscription_id, @customer_id, @paused_at)
ON CONFLICT (subscription_id) DO UPDATE SET paused_at = EXCLUDED.paused_at;

-- name: TakeExemptionPauses :many
-- The pauses the customer's exemption made, forgotten as they are read (the exemption is being lifted).
DELETE FROM dunning_exemption_pauses WHERE customer_id = $1
RETURNING subscription_id, paused_at;
