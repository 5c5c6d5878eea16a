-- Durable jobs fed by a transactional outbox: a change and the job it implies commit in one
-- transaction. Workers of any replica claim due jobs under a lease token; a job whose lease
-- runs out is due again. Retried with backoff up to max_attempts, then parked as 'dead' for an
-- operator to retry or discard. Every attempt is kept in job_attempts.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    unique_key   TEXT,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    runs         BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_token  TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
-- NULL unique keys never collide, on either engine.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (kind, unique_key);
CREATE INDEX jobs_due ON jobs (state, run_at);

CREATE TABLE job_attempts (
    job_id      TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    worker      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (job_id, attempt)
);

-- The next slot of each cron schedule; replicas advance it by compare-and-set.
CREATE TABLE job_schedules (
    name        TEXT PRIMARY KEY,
    next_run_at BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
