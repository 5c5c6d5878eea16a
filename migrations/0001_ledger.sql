-- The double-entry ledger.
--
-- Portable across SQLite and PostgreSQL: amounts are BIGINT minor units, ids are TEXT,
-- timestamps are BIGINT microseconds since the Unix epoch. Postings are append-only; a
-- correction is a new transaction.

-- An account holds one currency. Its posted and pending totals are materialised here and kept
-- equal to the sum of its postings and pending holds (`mypay check` verifies both).
CREATE TABLE ledger_accounts (
    id              TEXT PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'income', 'expense')),
    currency        TEXT NOT NULL,
    -- Bit 1: the account's available balance must not go below zero.
    flags           BIGINT NOT NULL DEFAULT 0,
    metadata        TEXT,
    debits_posted   BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending BIGINT NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    -- Number of postings so far; the next posting gets sequence posting_count + 1.
    posting_count   BIGINT NOT NULL DEFAULT 0,
    -- Time of the latest posting; later postings never carry an earlier time, so that the
    -- balance at an instant is the balance after the last posting at or before it.
    last_posted_at  BIGINT NOT NULL DEFAULT 0,
    -- Bumped on every write, and checked by the writer as a guard against lost updates.
    version         BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);

-- A journal transaction. Its id is chosen by the client (or generated), and doubles as its
-- idempotency key: resubmitting the same content returns this row, other content is refused.
CREATE TABLE ledger_transactions (
    id           TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    -- 'journal' for a posted transaction, 'hold_post' for the posting of a hold.
    kind         TEXT NOT NULL CHECK (kind IN ('journal', 'hold_post')),
    hold_id      TEXT,
    description  TEXT,
    metadata     TEXT,
    posted_at    BIGINT NOT NULL
);

-- One leg of a transaction. Amount is signed: debits positive, credits negative, never zero;
-- the legs of a transaction sum to zero per currency. No foreign keys: the writer checks every
-- account under lock in the same transaction, and per-row constraint triggers would cost more
-- than the rest of the insert; `mypay check` verifies the references instead.
CREATE TABLE ledger_postings (
    account_id     TEXT NOT NULL,
    account_seq    BIGINT NOT NULL,
    transaction_id TEXT NOT NULL,
    leg            INTEGER NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount <> 0),
    currency       TEXT NOT NULL,
    -- The account's posted balance on its normal side right after this posting.
    balance_after  BIGINT NOT NULL,
    posted_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, account_seq)
);
CREATE INDEX ledger_postings_by_transaction ON ledger_postings (transaction_id, leg);
CREATE INDEX ledger_postings_by_time ON ledger_postings (account_id, posted_at, account_seq);

-- A two-phase transfer: the amount is reserved (pending) on both accounts until the hold is
-- posted (fully or partially; the rest is released), voided, or expires.
CREATE TABLE ledger_holds (
    id                     TEXT PRIMARY KEY,
    content_hash           TEXT NOT NULL,
    debit_account_id       TEXT NOT NULL,
    credit_account_id      TEXT NOT NULL,
    currency               TEXT NOT NULL,
    amount                 BIGINT NOT NULL CHECK (amount > 0),
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),
    posted_amount          BIGINT NOT NULL DEFAULT 0,
    posting_transaction_id TEXT,
    expires_at             BIGINT,
    metadata               TEXT,
    created_at             BIGINT NOT NULL,
    resolved_at            BIGINT
);
CREATE INDEX ledger_holds_pending_by_expiry ON ledger_holds (expires_at) WHERE state = 'pending';
