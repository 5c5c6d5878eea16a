-- The back office (issue 6): operators who log in to the console at /admin, their console
-- sessions, and the audit log of every console action.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT microseconds since the Unix epoch.

-- An operator: a person with a console login, created by an admin key. Not a member and not
-- an API key; neither of those opens the console.
CREATE TABLE operators (
    -- 'opr_' followed by a ULID.
    id            TEXT PRIMARY KEY,
    -- Normalised (lower-case) address; the login name.
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    -- argon2id PHC string; the password itself is never stored.
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Set when the operator may no longer log in; their sessions end with it.
    disabled_at   BIGINT
);

-- A console session: the cookie holds the token, this table only its SHA-256 digest. Every
-- form the console renders carries the session's CSRF token, checked on every POST.
CREATE TABLE console_sessions (
    token_digest TEXT PRIMARY KEY,
    operator_id  TEXT NOT NULL REFERENCES operators (id),
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_operator ON console_sessions (operator_id);

-- Who did what to what, when, with the state before and after (JSON, or NULL where there is
-- none). Append-only.
CREATE TABLE audit_log (
    -- 'aud_' followed by a ULID: ordered by time.
    id             TEXT PRIMARY KEY,
    operator_id    TEXT NOT NULL,
    operator_email TEXT NOT NULL,
    -- e.g. 'console.log_in', 'job.retry', 'job.discard'.
    action         TEXT NOT NULL,
    -- What it was done to, e.g. a job id; empty when nothing in particular.
    target         TEXT NOT NULL,
    before_state   TEXT,
    after_state    TEXT,
    at             BIGINT NOT NULL
);
