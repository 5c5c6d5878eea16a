-- Item locks: a unique item (a one-off second-hand article, the last piece in stock) named in a
-- checkout is held by its first buyer until `expires_at`, so that a second buyer is refused
-- while the first one pays. This table is the lock store when no Redis is configured.
--
-- Portable across SQLite and PostgreSQL: TEXT keys, BIGINT microseconds since the Unix epoch.
-- A row whose `expires_at` has passed is no lock at all: the next buyer takes it over in place,
-- and `serve` deletes such rows in bounded sweeps so that the table holds about the live locks.
CREATE TABLE item_locks (
    -- The caller's item key, 1 to 128 characters of [A-Za-z0-9._:-] (checked by ItemKey).
    item_key   TEXT PRIMARY KEY,
    -- Who holds the item: the checkout (or other owner) that took it.
    holder     TEXT NOT NULL,
    -- When the hold ends, on the application's clock.
    expires_at BIGINT NOT NULL
);
CREATE INDEX item_locks_by_expiry ON item_locks (expires_at);
