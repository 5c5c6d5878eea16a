-- Settlement (정산): a daily batch that pays each merchant what its payable account holds at
-- the day's cutoff, less fees, to its settlement bank account.
--
-- Portable across SQLite and PostgreSQL: TEXT ids and dates, BIGINT minor units (KRW: won)
-- and BIGINT microseconds since the Unix epoch.

-- One run per settlement date: the KST business date 'YYYY-MM-DD' whose cutoff (the next
-- day's 00:00 KST) bounds what is settled. The counts and sums are recomputed from the
-- settlements at the end of every pass over the day, and written only when they changed.
CREATE TABLE settlement_runs (
    settlement_date TEXT PRIMARY KEY,
    cutoff_at       BIGINT NOT NULL,
    -- running: the calculation pass has not reached every merchant yet (or was interrupted);
    -- paying: every merchant is calculated and some payouts have no known outcome yet;
    -- completed: every settlement of the day is final.
    state           TEXT NOT NULL CHECK (state IN ('running', 'paying', 'completed')),
    -- Set once the calculation pass has looked at every merchant; after that, a run of this
    -- date only finishes the settlements it created and never creates another.
    calculated_at   BIGINT,
    settlements     BIGINT NOT NULL DEFAULT 0,
    paid            BIGINT NOT NULL DEFAULT 0,
    paying          BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    carried_over    BIGINT NOT NULL DEFAULT 0,
    gross           BIGINT NOT NULL DEFAULT 0,
    fee             BIGINT NOT NULL DEFAULT 0,
    net_paid        BIGINT NOT NULL DEFAULT 0,
    started_at      BIGINT NOT NULL,
    completed_at    BIGINT,
    updated_at      BIGINT NOT NULL
);

-- The one lease that makes runs exclusive (one run at a time, across replicas): taken with a
-- conditional update while free or expired, renewed per merchant, released at the end.
CREATE TABLE settlement_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    lease_until BIGINT NOT NULL
);
INSERT INTO settlement_lease (id, holder, lease_until) VALUES (1, NULL, 0);

-- One settlement per merchant and date. Its id ('stl_' + ULID) is also the id of its ledger
-- transaction (Dr payable gross, Cr income:fees fee, Cr the in-transit account net), of the
-- payout hold ('{id}.payout', posted as '{id}.paid'), of the return after a failed payout
-- ('{id}.returned') and the reference of its bank transfer, so every step repeated is a replay.
CREATE TABLE settlements (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    settlement_date  TEXT NOT NULL REFERENCES settlement_runs (settlement_date),
    -- The merchant's name when calculated, so the report of a day never changes.
    merchant_name    TEXT NOT NULL,
    currency         TEXT NOT NULL,
    -- The fee window [window_from, cutoff_at): from the cutoff of the merchant's last
    -- settlement that charged a fee (0 for the first) to this day's cutoff.
    window_from      BIGINT NOT NULL,
    cutoff_at        BIGINT NOT NULL,
    -- Sales credited to payable in the window (orders and escrow releases): the fee base.
    sales            BIGINT NOT NULL CHECK (sales >= 0),
    fee_bps          BIGINT NOT NULL CHECK (fee_bps >= 0 AND fee_bps <= 10000),
    -- What is taken from payable (may be negative for a carried-over debt), the fee charged
    -- and what is paid out: net = gross - fee.
    gross            BIGINT NOT NULL,
    fee              BIGINT NOT NULL CHECK (fee >= 0),
    net              BIGINT NOT NULL,
    -- calculated -> paying -> paid | failed; carried_over when net <= 0 (nothing is booked,
    -- the next settlement takes it and charges its fee).
    state            TEXT NOT NULL CHECK (state IN ('calculated', 'paying', 'paid', 'failed', 'carried_over')),
    bank_transfer_id TEXT,
    failure_code     TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK (net = gross - fee),
    CHECK (state = 'carried_over' OR net > 0),
    UNIQUE (merchant_id, settlement_date)
);
CREATE INDEX settlements_by_date ON settlements (settlement_date, merchant_id);
CREATE INDEX settlements_unfinished ON settlements (state) WHERE state IN ('calculated', 'paying');
