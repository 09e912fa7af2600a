-- name: GetTestClock :one
SELECT now FROM test_clock WHERE id;

-- name: InitTestClock :one
INSERT INTO test_clock (id, now) VALUES (true, @now)
ON CONFLICT (id) DO UPDATE SET now = test_clock.now
RETURNING now;

-- name: AdvanceTestClock :one
-- Forward only: GREATEST keeps a concurrent, smaller advance from moving the clock back.
UPDATE test_clock SET now = GREATEST(now, @target::timestamptz), updated_at = now() WHERE id
RETURNING now;
