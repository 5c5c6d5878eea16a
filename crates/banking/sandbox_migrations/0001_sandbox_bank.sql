-- The sandbox bank's own schema. It is not mypay's schema: this database belongs to a stand-in
-- for a bank and lives in the sandbox's data directory, next to nothing of mypay's.
-- Amounts are won (KRW has no minor unit); times are microseconds since the Unix epoch; a bank
-- day is a KST date written yyyyMMdd.

-- Accounts at any bank the sandbox stands in for, keyed as banks key them.
CREATE TABLE accounts (
    bank_code    TEXT    NOT NULL,
    account_num  TEXT    NOT NULL,
    holder_name  TEXT    NOT NULL,
    -- A deposit account cannot be overdrawn.
    balance      INTEGER NOT NULL CHECK (balance >= 0),
    -- 1 for the platform's master account: the one collects credit and payouts debit.
    is_master    INTEGER NOT NULL DEFAULT 0 CHECK (is_master IN (0, 1)),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (bank_code, account_num)
);

-- There is exactly one master account; it is created on first start.
CREATE UNIQUE INDEX accounts_one_master ON accounts (is_master) WHERE is_master = 1;

-- Debit consents (출금이체 동의), by the payer number the platform registered them under.
-- A revoked consent stays, so that revoking twice is not an error.
CREATE TABLE consents (
    payer_num     TEXT    PRIMARY KEY,
    bank_code     TEXT    NOT NULL,
    account_num   TEXT    NOT NULL,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    registered_at INTEGER NOT NULL,
    revoked_at    INTEGER,
    FOREIGN KEY (bank_code, account_num) REFERENCES accounts (bank_code, account_num)
);

-- Every collect and payout the sandbox processed, executed or refused, under the key a bank
-- keeps: the bank day of the request's own time (tran_dtime) and the request id. Replaying a
-- key answers from here, so nothing is ever executed twice.
CREATE TABLE transfers (
    tran_date        TEXT    NOT NULL,
    bank_tran_id     TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('collect', 'payout')),
    -- The member's account (collect) or the recipient's (payout); not necessarily an account
    -- that exists, since a transfer to an unknown account is recorded as refused.
    bank_code        TEXT    NOT NULL,
    account_num      TEXT    NOT NULL,
    payer_num        TEXT,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    -- '000' when executed, otherwise the refusal code.
    bank_rsp_code    TEXT    NOT NULL,
    bank_rsp_message TEXT    NOT NULL,
    processed_at     INTEGER NOT NULL,
    PRIMARY KEY (tran_date, bank_tran_id)
);

-- Statement lines: one per account per move, with the balance right after it.
CREATE TABLE entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_code     TEXT    NOT NULL,
    account_num   TEXT    NOT NULL,
    -- The bank day of tran_at.
    tran_date     TEXT    NOT NULL,
    tran_at       INTEGER NOT NULL,
    direction     TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    -- '이체' for transfers through the API, '현금' for cash deposits at the counter (admin).
    tran_type     TEXT    NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    print_content TEXT    NOT NULL,
    bank_tran_id  TEXT,
    FOREIGN KEY (bank_code, account_num) REFERENCES accounts (bank_code, account_num)
);

CREATE INDEX entries_by_account_day ON entries (bank_code, account_num, tran_date, id);
