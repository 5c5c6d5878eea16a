-- Checkout payments: one row per payment (a checkout), one per payment order (a seller's part),
-- and payments become a kind of wallet operation.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT minor units, BIGINT microseconds
-- since the Unix epoch, 0/1 in BIGINT columns for flags. The money is in the ledger; these
-- tables say where each order stands, so that a crash at any point is resumed, never redone.

-- Wallet operations gain the kinds 'payment' (money held at checkout, taken when the order
-- succeeds) and 'refund' (money a merchant gave back). A CHECK constraint cannot be altered
-- portably, so the table is rebuilt.
CREATE TABLE wallet_operations_next (
    id                     TEXT PRIMARY KEY,
    member_id              TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('charge', 'withdrawal', 'payout', 'transfer', 'payment', 'refund')),
    currency               TEXT NOT NULL,
    amount                 BIGINT NOT NULL CHECK (amount > 0),
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    member_label           TEXT NOT NULL,
    counterparty_member_id TEXT,
    counterparty_label     TEXT NOT NULL,
    bank_account_id        TEXT,
    hold_id                TEXT,
    bank_transfer_id       TEXT,
    parent_id              TEXT,
    usage_day              TEXT NOT NULL,
    failure_code           TEXT,
    request_scope          TEXT,
    request_key            TEXT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
INSERT INTO wallet_operations_next
    SELECT id, member_id, kind, currency, amount, state, member_label, counterparty_member_id,
           counterparty_label, bank_account_id, hold_id, bank_transfer_id, parent_id, usage_day,
           failure_code, request_scope, request_key, created_at, updated_at
    FROM wallet_operations;
DROP TABLE wallet_operations;
ALTER TABLE wallet_operations_next RENAME TO wallet_operations;
CREATE UNIQUE INDEX wallet_operations_by_request ON wallet_operations (request_scope, request_key);
CREATE INDEX wallet_operations_by_member ON wallet_operations (member_id, id);
CREATE INDEX wallet_operations_pending ON wallet_operations (state, updated_at);

-- A payment (결제 이벤트): what a buyer paid at one checkout, and how it was funded.
CREATE TABLE payments (
    -- 'pay_' followed by a ULID.
    id               TEXT PRIMARY KEY,
    -- The client's globally unique id of the checkout: a second request with it finds this row.
    checkout_id      TEXT NOT NULL UNIQUE,
    buyer_member_id  TEXT NOT NULL,
    -- Who created it (a member or an API key), and a digest of the request, so that the same
    -- checkout sent again with other content is refused instead of answered.
    request_scope    TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    currency         TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    -- The funding mix; the three parts sum to the amount.
    points_amount    BIGINT NOT NULL CHECK (points_amount >= 0),
    money_amount     BIGINT NOT NULL CHECK (money_amount >= 0),
    card_amount      BIGINT NOT NULL CHECK (card_amount >= 0),
    -- The PSP's token of the buyer's registered card (a billing key, never a card number).
    billing_key      TEXT,
    auto_top_up      BIGINT NOT NULL CHECK (auto_top_up IN (0, 1)),
    -- The unique items the checkout locked, as a JSON array of item keys.
    items            TEXT NOT NULL,
    -- 'executing' until every order is final, then 'succeeded', 'failed' or
    -- 'partially_succeeded'.
    status           TEXT NOT NULL CHECK (status IN ('executing', 'succeeded', 'failed', 'partially_succeeded')),
    -- Raised by every change, and carried by its webhook events so receivers can order them.
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK (points_amount + money_amount + card_amount = amount)
);
CREATE INDEX payments_by_buyer ON payments (buyer_member_id, id);

-- A payment order (결제 주문): one seller's part of a payment, executed on its own.
CREATE TABLE payment_orders (
    -- 'po_' followed by a ULID.
    id                TEXT PRIMARY KEY,
    -- The client's globally unique id of the order; the PSP's order id and idempotency key.
    payment_order_id  TEXT NOT NULL UNIQUE,
    payment_id        TEXT NOT NULL,
    -- The order's place in the request (funding is allocated in this order).
    seq               BIGINT NOT NULL,
    seller_merchant_id TEXT NOT NULL,
    currency          TEXT NOT NULL,
    amount            BIGINT NOT NULL CHECK (amount > 0),
    points_amount     BIGINT NOT NULL CHECK (points_amount >= 0),
    money_amount      BIGINT NOT NULL CHECK (money_amount >= 0),
    card_amount       BIGINT NOT NULL CHECK (card_amount >= 0),
    -- Whether the seller's money waits in escrow until the buyer confirms.
    escrow            BIGINT NOT NULL CHECK (escrow IN (0, 1)),
    -- The merchant's fee rate when the order was made, for settlement.
    fee_bps           BIGINT NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    status            TEXT NOT NULL CHECK (status IN ('NOT_STARTED', 'EXECUTING', 'SUCCESS', 'FAILED')),
    -- The buyer's money and points were taken (their holds posted).
    wallet_updated    BIGINT NOT NULL CHECK (wallet_updated IN (0, 1)),
    -- The order was booked to the seller in the ledger.
    ledger_updated    BIGINT NOT NULL CHECK (ledger_updated IN (0, 1)),
    -- The wallet operation (mtx_…) holding the money part.
    money_tx_id       TEXT,
    -- Where the card part stands: 'none' (no card part or not sent), 'requested' (sent, outcome
    -- not known: ask the PSP before anything else), 'approved', 'declined'.
    card_state        TEXT NOT NULL CHECK (card_state IN ('none', 'requested', 'approved', 'declined')),
    -- When the charge was first sent, and last sent again (same order id): an unknown charge
    -- is sent again only within a window of the first send, and taken as never received only
    -- a window after the last one, when no send can still be in flight.
    card_first_sent_at BIGINT,
    card_last_sent_at  BIGINT,
    psp_payment_key   TEXT,
    failure_code      TEXT,
    failure_message   TEXT,
    -- A FAILED order whose held points and money have been given back (1), or not yet (0): the
    -- decision to fail commits first, the release follows and is finished by the resumer.
    funds_released    BIGINT NOT NULL CHECK (funds_released IN (0, 1)),
    -- The run working on the order holds it until then; another run waits for the lease to
    -- pass, so two runs never move one order's money at once.
    claimed_until     BIGINT NOT NULL,
    version           BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CHECK (points_amount + money_amount + card_amount = amount)
);
CREATE INDEX payment_orders_by_payment ON payment_orders (payment_id, seq);
CREATE INDEX payment_orders_by_seller ON payment_orders (seller_merchant_id, id);
CREATE INDEX payment_orders_unfinished ON payment_orders (status, updated_at);
CREATE INDEX payment_orders_unreleased ON payment_orders (funds_released, status);
