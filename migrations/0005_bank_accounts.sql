-- Linked bank accounts: the accounts a member charges from (charge accounts, many per member)
-- and their one partner-bank account (1:1 both ways), with the 1-won micro-deposits that prove
-- the member can read the account's statement.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT microseconds since the Unix epoch.
-- No account number is stored in the clear: it is AES-256-GCM ciphertext under a named key
-- (so keys can rotate), an HMAC-SHA256 blind index (for uniqueness without decrypting) and the
-- last four digits (for masking).

CREATE TABLE bank_accounts (
    -- 'ba_' followed by a ULID.
    id                    TEXT PRIMARY KEY,
    member_id             TEXT NOT NULL REFERENCES members (id),
    -- 'charge' (many per member) or 'partner' (the partner bank's account; one per member and
    -- one member per account).
    kind                  TEXT NOT NULL CHECK (kind IN ('charge', 'partner')),
    -- deposit_pending: the 1-won deposit's outcome is not known yet;
    -- awaiting_verification: the deposit arrived, the member has to type its code;
    -- verified: the code matched; consent_pending: an ARS session for the debit consent is
    -- open or confirmed but not yet registered at the bank; active: the consent is registered
    -- (debits allowed); unlinked: ended by the member; failed: the bank refused the deposit.
    status                TEXT NOT NULL CHECK (status IN ('deposit_pending',
                              'awaiting_verification', 'verified', 'consent_pending', 'active',
                              'unlinked', 'failed')),
    bank_code             TEXT NOT NULL,
    -- The id of the key in the keyring that sealed account_number_sealed.
    account_key_id        TEXT NOT NULL,
    -- base64 of nonce (12 bytes) || ciphertext || tag; the row id and bank code are the
    -- associated data, so a ciphertext copied to another row does not open.
    account_number_sealed TEXT NOT NULL,
    -- hex HMAC-SHA256 of bank code and number under the index key.
    account_blind_index   TEXT NOT NULL,
    account_last4         TEXT NOT NULL,
    -- The holder name the bank reported (the member's own name, checked at linking).
    holder_name           TEXT NOT NULL,
    -- The payer number (납부자번호) the debit consent is registered under at the bank; issued
    -- when the member confirms the ARS step, before the bank is called, so retries reuse it.
    payer_number          TEXT UNIQUE,
    -- The open ARS session: an HMAC of its 2-digit code, its expiry and the attempts used.
    ars_code_hmac         TEXT,
    ars_expires_at        BIGINT,
    ars_attempts          BIGINT NOT NULL DEFAULT 0,
    -- When the member keyed the right ARS code.
    consent_confirmed_at  BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    verified_at           BIGINT,
    activated_at          BIGINT,
    -- Set with status 'unlinked' or 'failed'; a link with ended_at set is history.
    ended_at              BIGINT,
    CHECK ((status IN ('unlinked', 'failed')) = (ended_at IS NOT NULL))
);

-- A member links one account once: no two live links of one member share an account number.
CREATE UNIQUE INDEX bank_accounts_member_number_live
    ON bank_accounts (member_id, account_blind_index) WHERE ended_at IS NULL;
-- The partner link is 1:1: at most one live partner link per member, and one per account.
CREATE UNIQUE INDEX bank_accounts_partner_member_live
    ON bank_accounts (member_id) WHERE kind = 'partner' AND ended_at IS NULL;
CREATE UNIQUE INDEX bank_accounts_partner_number_live
    ON bank_accounts (account_blind_index) WHERE kind = 'partner' AND ended_at IS NULL;
CREATE INDEX bank_accounts_by_member ON bank_accounts (member_id, id);

-- One row per 1-won micro-deposit (the first and each resend). Its id names the bank transfer
-- and the ledger transaction that books it ('<id>.deposit'), so a retry never books twice.
CREATE TABLE bank_account_deposits (
    -- 'bad_' followed by a ULID.
    id               TEXT PRIMARY KEY,
    bank_account_id  TEXT NOT NULL REFERENCES bank_accounts (id),
    -- 1 for the first deposit, 2, 3, … for resends; bounds the resends per link.
    seq              BIGINT NOT NULL,
    -- Our bank_tran_id and the request time sent as tran_dtime, stored before the call and
    -- reused for every retry and inquiry.
    bank_tran_id     TEXT NOT NULL UNIQUE,
    requested_at     BIGINT NOT NULL,
    -- pending (sent or about to be; outcome unknown), succeeded, failed (refused by the bank).
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- HMAC-SHA256 of the code under the index key; a leaked table does not reveal codes.
    code_hmac        TEXT NOT NULL,
    -- The memo (with the code) sealed like account numbers, kept only while the deposit is
    -- pending so that a retry sends the identical request; erased once settled.
    memo_key_id      TEXT,
    memo_sealed      TEXT,
    -- The bank's refusal code when it refused.
    failure_code     TEXT,
    -- When the deposit was seen to succeed; the code expires a fixed time after this.
    deposited_at     BIGINT,
    expires_at       BIGINT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    UNIQUE (bank_account_id, seq)
);
CREATE INDEX bank_account_deposits_pending ON bank_account_deposits (status, created_at);
