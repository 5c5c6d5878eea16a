-- Wallets and money movements: which ledger account is whose wallet, one row per money
-- transaction (`mtx_…`), the daily limit counters, and the bank transfers behind charges,
-- withdrawals and payouts.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT minor units, BIGINT microseconds
-- since the Unix epoch. The money itself is in the ledger; these tables say what it was for.

-- A member's wallet in one currency is the ledger account
-- `liability:member:{member_id}:money:{currency}`, opened on first use. This row finds it by
-- owner without scanning ledger account codes.
CREATE TABLE wallets (
    member_id         TEXT NOT NULL,
    currency          TEXT NOT NULL,
    ledger_account_id TEXT NOT NULL UNIQUE,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (member_id, currency)
);

-- One row per money transaction: a charge, a withdrawal, a payout or a member-to-member
-- transfer. Its id is the id of the one ledger transaction that moves the money, so a wallet's
-- ledger history joins to it. Account numbers and names appear only masked.
CREATE TABLE wallet_operations (
    -- 'mtx_' followed by a ULID: the money transaction number shown to members.
    id                     TEXT PRIMARY KEY,
    member_id              TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('charge', 'withdrawal', 'payout', 'transfer')),
    currency               TEXT NOT NULL,
    amount                 BIGINT NOT NULL CHECK (amount > 0),
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    -- The member's own label (a masked name), shown to the other side of a transfer.
    member_label           TEXT NOT NULL,
    -- The other side: a member for transfers (with a masked name), a masked bank account else.
    counterparty_member_id TEXT,
    counterparty_label     TEXT NOT NULL,
    -- The linked account a charge or withdrawal used; payouts to any account have none.
    bank_account_id        TEXT,
    -- The ledger hold reserving the money while a bank transfer is in flight.
    hold_id                TEXT,
    -- The bank transfer (bank_transfers.id) behind a charge, withdrawal or payout.
    bank_transfer_id       TEXT,
    -- The operation an automatic top-up charge was made for.
    parent_id              TEXT,
    -- The KST day whose limit counters this operation used, to give them back on failure.
    usage_day              TEXT NOT NULL,
    failure_code           TEXT,
    -- Who asked and with which Idempotency-Key: a re-run of the same request (after a crash or
    -- a lost claim) finds this row instead of moving money again.
    request_scope          TEXT,
    request_key            TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE UNIQUE INDEX wallet_operations_by_request ON wallet_operations (request_scope, request_key);
CREATE INDEX wallet_operations_by_member ON wallet_operations (member_id, id);
CREATE INDEX wallet_operations_pending ON wallet_operations (state, updated_at);

-- What a member used of a daily limit on one KST day: charged in, and sent out (withdrawals,
-- payouts, transfers). Taken with one conditional UPDATE (`used + amount <= limit`), so the
-- limit holds across concurrent requests and replicas; given back when the movement fails.
CREATE TABLE wallet_daily_usage (
    member_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('charge', 'outgoing')),
    used      BIGINT NOT NULL CHECK (used >= 0),
    PRIMARY KEY (member_id, day, kind)
);

-- Every collect and payout sent to the bank, recorded before the call. The account number is
-- not stored (only masked): the request stays in the memory of the process that made it for
-- the resolution window, and after that only inquiries (which need no account) are made.
CREATE TABLE bank_transfers (
    -- 'btr_' followed by a ULID.
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('collect', 'payout')),
    -- Our request id at the bank, unique per bank day; reused for every resend and inquiry.
    bank_tran_id   TEXT NOT NULL UNIQUE,
    -- The original request time: its bank day is part of the bank's key, so resends carry it.
    requested_at   BIGINT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    -- The member's or recipient's account, masked (bank code and the last digits).
    account_masked TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'unknown')),
    -- Requests sent (the first and every resend with the same id) and inquiries made.
    attempts       BIGINT NOT NULL,
    inquiries      BIGINT NOT NULL,
    failure_code   TEXT,
    -- Who the transfer is for ('wallet', later settlement, remittance) and their reference.
    owner          TEXT NOT NULL,
    reference      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    resolved_at    BIGINT,
    UNIQUE (owner, reference)
);
CREATE INDEX bank_transfers_unresolved ON bank_transfers (state, updated_at);
