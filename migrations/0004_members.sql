-- Members: the people who sign up, log in and hold prepaid money.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT microseconds since the Unix epoch.
-- A member's money is not here: it lives in ledger accounts coded `liability:member:{id}:…`.

-- One row per member. Passwords are stored only as argon2id hashes (PHC strings, with their
-- own salt and parameters), never in a form that can be reversed.
CREATE TABLE members (
    -- 'usr_' followed by a ULID, so ids sort by sign-up time.
    id            TEXT PRIMARY KEY,
    -- Lower case, ASCII; unique among active members (see the index below).
    email         TEXT NOT NULL,
    -- E.164 with its '+', such as '+821012345678'; unique among active members.
    phone         TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- A closed member cannot log in and their sessions stop working. Closing is final.
    status        TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    closed_at     BIGINT,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- An email or phone number belongs to at most one active member. Closing releases them, so a
-- person who closed their account can sign up again with the same address.
CREATE UNIQUE INDEX members_email_active ON members (email) WHERE status = 'active';
CREATE UNIQUE INDEX members_phone_active ON members (phone) WHERE status = 'active';

-- Login sessions. The token is 256 random bits that only the client keeps; the server stores
-- its SHA-256 digest (a slow hash would add latency to every request and no security to a
-- random secret), so a database leak reveals no usable token.
CREATE TABLE member_sessions (
    -- 'mss_' followed by a ULID.
    id           TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL REFERENCES members (id),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    -- Absolute expiry, fixed at login; using a session does not extend it.
    expires_at   BIGINT NOT NULL,
    -- Set by logging out, by a password change and by closing the member.
    revoked_at   BIGINT
);
CREATE INDEX member_sessions_by_member ON member_sessions (member_id, created_at);

-- Failed password checks per email address, to bound guessing: after a number of failures
-- within a window the address is locked for a while, even for the right password. Rows exist
-- for addresses that belong to no member too, so that locking reveals nothing about which
-- addresses are registered. A successful login deletes its row; stale rows are pruned.
CREATE TABLE member_login_throttle (
    -- The normalised email address the attempts named.
    email             TEXT PRIMARY KEY,
    -- Failures since window_started_at.
    failures          BIGINT NOT NULL CHECK (failures >= 0),
    window_started_at BIGINT NOT NULL,
    -- While in the future, every attempt for this address is refused unchecked.
    locked_until      BIGINT
);
CREATE INDEX member_login_throttle_by_window ON member_login_throttle (window_started_at);
