-- HTTP idempotency: one row per (caller, Idempotency-Key) for money-moving POST requests.
--
-- A request claims its key by inserting a 'running' row (INSERT ... ON CONFLICT DO NOTHING, so
-- that exactly one of several concurrent requests wins); when it finishes, the row turns 'done'
-- and keeps the response, which later requests with the same key and the same request get back
-- verbatim. A request that failed with a server error deletes its row so the client can retry.
-- Portable across SQLite and PostgreSQL: TEXT and BIGINT only, times in microseconds.
CREATE TABLE idempotency_keys (
    -- Whose key this is: the API key id today, a member or merchant id for later routes.
    -- Keys of different callers never collide.
    scope           TEXT NOT NULL,
    -- The client's Idempotency-Key header: 1 to 255 visible ASCII characters.
    key             TEXT NOT NULL,
    -- SHA-256 (hex) of method, path and body; the same key with another request is refused.
    request_sha256  TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'done')),
    -- The stored response, set when state becomes 'done'.
    response_status BIGINT,
    response_body   TEXT,
    created_at      BIGINT NOT NULL,
    -- When the current claim was taken. A 'running' claim much older than the request timeout
    -- belongs to a request that died with its process, and may be taken over.
    claimed_at      BIGINT NOT NULL,
    completed_at    BIGINT,
    PRIMARY KEY (scope, key),
    CHECK (state = 'running' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- For a future sweeper that forgets completed keys after their retention period.
CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at);
