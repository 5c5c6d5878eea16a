-- Refunds of payment orders, and the escrows of escrow orders.
--
-- Portable across SQLite and PostgreSQL (ADD COLUMN with a constant default works on both).

-- What has been given back of an order, per funding source. A refund reserves its parts here
-- (under the order's version) before anything moves, so concurrent refunds can never give
-- back more than was paid.
ALTER TABLE payment_orders ADD COLUMN points_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN money_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN card_refunded BIGINT NOT NULL DEFAULT 0;

-- The escrow of an escrow order, opened in the transaction that makes the order SUCCESS.
CREATE TABLE escrows (
    -- The payment order (po_…).
    payment_order_id TEXT PRIMARY KEY,
    -- 'held', 'shipped', 'delivered' (the money waits in the seller's escrow account),
    -- 'confirmed' (released to the seller's payable account) or 'cancelled' (refunded).
    state            TEXT NOT NULL CHECK (state IN ('held', 'shipped', 'delivered', 'confirmed', 'cancelled')),
    held_at          BIGINT NOT NULL,
    -- Until when the order may be cancelled; moved later by the time a dispute paused it.
    cancel_until     BIGINT NOT NULL,
    shipped_at       BIGINT,
    delivered_at     BIGINT,
    -- When a delivered order confirms itself; moved later by the time a dispute paused it.
    confirm_at       BIGINT,
    -- Set while a dispute is open: the timers stand still.
    disputed_at      BIGINT,
    version          BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX escrows_due ON escrows (state, confirm_at);

-- One row per refund of one order.
CREATE TABLE refunds (
    -- 'rfd_' followed by a ULID; the PSP cancellation's idempotency key.
    id               TEXT PRIMARY KEY,
    -- The money transaction number (mtx_…) of the one ledger transaction that gives the money
    -- back; the buyer's wallet history shows the refund under it.
    money_tx_id      TEXT NOT NULL UNIQUE,
    payment_order_id TEXT NOT NULL,
    -- Who asked and with which key: the same key again finds this refund.
    request_scope    TEXT NOT NULL,
    request_key      TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    -- The parts, taken from the order's sources in the order points, money, card.
    points_amount    BIGINT NOT NULL CHECK (points_amount >= 0),
    money_amount     BIGINT NOT NULL CHECK (money_amount >= 0),
    card_amount      BIGINT NOT NULL CHECK (card_amount >= 0),
    reason           TEXT NOT NULL,
    -- The seller's account the money is taken back from: 'escrow' while the order's money
    -- waited in escrow when the refund was reserved, else 'payable'. Decided once, so that a
    -- booking repeated after a crash carries the same postings, and so that an escrow released
    -- meanwhile (it moves only what refunds have not reserved) leaves this refund's money where
    -- the refund takes it from.
    seller_account   TEXT NOT NULL CHECK (seller_account IN ('payable', 'escrow')),
    -- 'pending' until the card part (if any) is cancelled at the PSP and the money is booked;
    -- 'succeeded'; or 'failed' (the PSP refused; the parts were given back to the order).
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- 'none', 'requested' (sent, outcome unknown), 'cancelled', 'refused'.
    card_state       TEXT NOT NULL CHECK (card_state IN ('none', 'requested', 'cancelled', 'refused')),
    failure_code     TEXT,
    -- The run working on the refund holds it until then (0: nobody); another run waits for
    -- the lease to pass, so two runs never send or settle one refund's cancellation at once.
    claimed_until    BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK (points_amount + money_amount + card_amount = amount),
    UNIQUE (request_scope, request_key)
);
CREATE INDEX refunds_by_order ON refunds (payment_order_id, id);
CREATE INDEX refunds_unfinished ON refunds (status, updated_at);
