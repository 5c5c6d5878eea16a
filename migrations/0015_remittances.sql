-- Business remittance (사업자 송금, seed 002): business A's money collected into the platform's
-- master account, deposited into the platform ledger, withdrawn and paid out to business B.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT minor units and microseconds since
-- the Unix epoch. The money is in the ledger (`liability:remittance:held:KRW` while it is on
-- its way); these tables hold the requests, the steps they reached and the steps that failed.

-- A business's debit mandate (CMS 출금이체 동의 for a company): the bank account it may be
-- debited from and the payer number the consent is registered under at the bank. Businesses
-- sign it on paper; an operator registers it. The account is the merchant's settlement account
-- at registration, sealed exactly as it is in `merchants` (same key, same associated data), so
-- a later change of the settlement account does not silently move the mandate.
CREATE TABLE merchant_debit_mandates (
    merchant_id    TEXT PRIMARY KEY REFERENCES merchants (id),
    payer_number   TEXT NOT NULL UNIQUE,
    bank_code      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    number_sealed  TEXT NOT NULL,
    last4          TEXT NOT NULL,
    -- active: collects may cite it; revoked: withdrawn at the bank, nothing may be collected.
    status         TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- One remittance request (BizRemittanceRequests). Its id, 'rem_' and a ULID, is the request's
-- unique number: every bank transfer, ledger transaction and job of the remittance is named
-- after it, so that any step run again is a replay.
CREATE TABLE remittances (
    id                     TEXT PRIMARY KEY,
    sender_merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    recipient_merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    -- In won (KRW has no minor unit); bank transfers are in won.
    amount                 BIGINT NOT NULL CHECK (amount > 0),
    currency               TEXT NOT NULL CHECK (currency = 'KRW'),
    memo                   TEXT,
    -- requested → collected → deposited → withdrawn → completed; a refused collect ends
    -- failed (nothing moved); a refused payout goes returning → returned (A paid back).
    state                  TEXT NOT NULL CHECK (state IN ('requested', 'collected',
                               'deposited', 'withdrawn', 'completed', 'returning',
                               'returned', 'failed')),
    failure_code           TEXT,
    -- Who asked, with which Idempotency-Key, and a digest of what they asked: a retry after
    -- the HTTP layer forgot the key finds this remittance instead of creating a second.
    request_scope          TEXT NOT NULL,
    request_key            TEXT,
    request_digest         TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    finished_at            BIGINT,
    -- When the monitor alerted that the remittance was not finished in time (once).
    alerted_at             BIGINT,
    UNIQUE (request_scope, request_key)
);

CREATE INDEX remittances_unfinished ON remittances (finished_at, created_at);
CREATE INDEX remittances_by_sender ON remittances (sender_merchant_id, id);

-- What a remittance went through (BizRemittanceRequestRecords): one row per state reached,
-- written in the transaction that moved it there.
CREATE TABLE remittance_records (
    remittance_id  TEXT NOT NULL REFERENCES remittances (id),
    state          TEXT NOT NULL,
    -- The bank transfer or ledger transaction the step made, if any.
    reference      TEXT,
    at             BIGINT NOT NULL,
    PRIMARY KEY (remittance_id, state)
);

-- The steps that failed (KcdBankAccountDepositFailures, …WithdrawalFailures,
-- BizRemittanceRequestFailures as one table with a step column): one row per remittance and
-- step, counting its failed attempts, with the job that runs the step. The retry batch
-- re-queues a step whose job is a dead letter, at most a few times (batch_retries); the row is
-- resolved when the step finally succeeds.
CREATE TABLE remittance_failures (
    remittance_id    TEXT NOT NULL REFERENCES remittances (id),
    -- collect, deposit, withdraw, payout or return.
    step             TEXT NOT NULL,
    job_id           TEXT NOT NULL,
    failures         BIGINT NOT NULL,
    last_code        TEXT NOT NULL,
    last_message     TEXT NOT NULL,
    first_failed_at  BIGINT NOT NULL,
    last_failed_at   BIGINT NOT NULL,
    batch_retries    BIGINT NOT NULL DEFAULT 0,
    resolved_at      BIGINT,
    PRIMARY KEY (remittance_id, step)
);

CREATE INDEX remittance_failures_open ON remittance_failures (resolved_at, last_failed_at);
