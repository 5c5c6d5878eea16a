-- Merchants (가맹점): who sells through the platform, the fee rate it pays, and the bank
-- account it is settled to; and API keys bound to one merchant.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT microseconds since the Unix epoch.
-- A merchant's money is in the ledger (`liability:merchant:{id}:payable:{CUR}` and
-- `…:escrow:{CUR}`, opened on first use); this table holds no amounts.

CREATE TABLE merchants (
    -- 'mer_' followed by a ULID.
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    -- active: may take new payments; suspended: may not (money already owed is untouched).
    status                    TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    -- The fee rate in basis points of each payment: 0 to 10,000 (100 %), an integer.
    fee_bps                   BIGINT NOT NULL CHECK (fee_bps >= 0 AND fee_bps <= 10000),
    -- The settlement account. The number is sealed like linked accounts' numbers: AES-256-GCM
    -- under the keyring key named in settlement_key_id, base64 of nonce || ciphertext || tag,
    -- with the merchant id and bank code as associated data, so a ciphertext copied to another
    -- row (or relabelled with another bank) does not open. The last four digits are kept for
    -- masking, so reads never decrypt.
    settlement_bank_code      TEXT NOT NULL,
    settlement_key_id         TEXT NOT NULL,
    settlement_number_sealed  TEXT NOT NULL,
    settlement_last4          TEXT NOT NULL,
    -- The holder name the bank reported when the account was checked.
    settlement_holder_name    TEXT NOT NULL,
    -- The Idempotency-Key the merchant was onboarded with (the caller's scope and the key)
    -- and an HMAC of the onboarding request under the account index key, so that a retry
    -- after the HTTP layer forgot the key finds this merchant instead of creating another.
    request_scope             TEXT,
    request_key               TEXT,
    request_mac               TEXT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL,
    UNIQUE (request_scope, request_key)
);

-- A merchant key acts for exactly one merchant. Keys of other roles are never bound. Merchant
-- keys created before this migration stay unbound and reach no merchant's resources.
ALTER TABLE api_keys ADD COLUMN merchant_id TEXT REFERENCES merchants (id)
    CHECK (merchant_id IS NULL OR role = 'merchant');
