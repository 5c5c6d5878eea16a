-- The sandbox PSP's own books, in its own SQLite file; never mypay's database.
-- Times are microseconds since the Unix epoch; amounts are won.

-- An approved card charge and what remains cancellable of it.
CREATE TABLE payments (
    payment_key     TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL UNIQUE,
    billing_key     TEXT NOT NULL,
    customer_key    TEXT NOT NULL,
    order_name      TEXT NOT NULL,
    total_amount    BIGINT NOT NULL CHECK (total_amount > 0),
    balance_amount  BIGINT NOT NULL CHECK (balance_amount >= 0 AND balance_amount <= total_amount),
    status          TEXT NOT NULL CHECK (status IN ('DONE', 'PARTIAL_CANCELED', 'CANCELED')),
    approved_at     BIGINT NOT NULL,
    last_transaction_key TEXT NOT NULL
);

-- Every approval and cancellation, in order: the transaction report, and a payment's cancels.
CREATE TABLE transactions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_key TEXT NOT NULL UNIQUE,
    payment_key     TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    customer_key    TEXT NOT NULL,
    -- 'approval' or 'cancel'.
    kind            TEXT NOT NULL CHECK (kind IN ('approval', 'cancel')),
    -- The payment's status right after this transaction.
    status          TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    cancel_reason   TEXT,
    -- What remained cancellable right after this transaction.
    refundable_amount BIGINT NOT NULL,
    transaction_at  BIGINT NOT NULL
);
CREATE INDEX transactions_by_payment ON transactions (payment_key, seq);
CREATE INDEX transactions_by_time ON transactions (transaction_at, seq);

-- The stored answer to each request made with an Idempotency-Key, per endpoint: the same key
-- with the same body gets this answer again; with another body it is refused.
CREATE TABLE idempotent_replies (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
