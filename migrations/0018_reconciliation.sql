-- Reconciliation (issue 5): each KST business day's bank statement of the master account and
-- the PSP's transaction report held against what mypay recorded, and the day's safeguarding
-- figures. A run of a day replaces that day's earlier results in one transaction: the results
-- are a pure function of the two sides as read at the run, so running a day again only
-- refreshes them.
--
-- Portable across SQLite and PostgreSQL: TEXT ids and dates, BIGINT microseconds and won.

CREATE TABLE reconciliation_runs (
    -- The KST business date, 'YYYY-MM-DD'.
    reconciliation_date TEXT PRIMARY KEY,
    -- The end of what was compared: the next day's 00:00 KST, or the run's time for a day
    -- still in progress.
    cutoff_at           BIGINT NOT NULL,
    -- 'matched' (no mismatch, safeguarding ok) or 'mismatched'.
    status              TEXT NOT NULL CHECK (status IN ('matched', 'mismatched')),
    bank_lines          BIGINT NOT NULL,
    our_bank_lines      BIGINT NOT NULL,
    bank_matched        BIGINT NOT NULL,
    psp_lines           BIGINT NOT NULL,
    our_psp_lines       BIGINT NOT NULL,
    psp_matched         BIGINT NOT NULL,
    mismatches          BIGINT NOT NULL,
    -- Safeguarding, in won, at the cutoff: Σ member money; the ledger's master account; the
    -- bank's closing balance of the master account (NULL when the bank showed none); the
    -- platform's own money at the bank that the ledger does not book; and the members' part
    -- of the master account that follows (NULL with the bank balance).
    member_money        BIGINT NOT NULL,
    ledger_master       BIGINT NOT NULL,
    bank_balance        BIGINT,
    own_funds           BIGINT NOT NULL,
    members_part        BIGINT,
    safeguarding        TEXT NOT NULL CHECK (safeguarding IN ('ok', 'shortfall', 'excess', 'unknown')),
    -- How often the day was run; the first and the latest run's times.
    runs                BIGINT NOT NULL,
    first_run_at        BIGINT NOT NULL,
    run_at              BIGINT NOT NULL
);

-- Every mismatch of a run: a line one side has and the other lacks, or both have with
-- different amounts. Replaced with its run.
CREATE TABLE reconciliation_mismatches (
    reconciliation_date TEXT NOT NULL REFERENCES reconciliation_runs (reconciliation_date),
    seq                 BIGINT NOT NULL,
    -- 'bank' (the master account's statement) or 'psp' (the card processor's report).
    source              TEXT NOT NULL CHECK (source IN ('bank', 'psp')),
    kind                TEXT NOT NULL CHECK (kind IN ('missing_ours', 'missing_theirs', 'amount_differs')),
    -- What both sides are matched by: the bank_tran_id of a transfer (or 'line:…' for a
    -- statement line without one), or '<PSP order id>:approval|cancellation'.
    match_key           TEXT NOT NULL,
    -- Our record behind it (btr_…, bad_…, po_…, rfd_…), when we have one.
    our_reference       TEXT,
    -- Signed won (into the master account positive) or, for the PSP, positive won.
    our_amount          BIGINT,
    their_amount        BIGINT,
    -- When the line happened, on the side that has it (theirs first).
    happened_at         BIGINT,
    detail              TEXT NOT NULL,
    PRIMARY KEY (reconciliation_date, seq)
);

-- Our side of a day is read by request or card time; these keep those reads off full scans.
CREATE INDEX bank_transfers_by_request_time ON bank_transfers (requested_at);
CREATE INDEX bank_account_deposits_by_request_time ON bank_account_deposits (requested_at);
CREATE INDEX payment_orders_by_card_time ON payment_orders (card_last_sent_at);
CREATE INDEX refunds_by_update_time ON refunds (updated_at);
