-- Refunds of payment orders, and where an escrow order's money stands.
--
-- Portable across SQLite and PostgreSQL (ADD COLUMN with a constant default works on both).

-- What has been given back of an order, per funding source. A refund reserves its parts here
-- (under the order's version) before anything moves, so concurrent refunds can never give
-- back more than was paid.
ALTER TABLE payment_orders ADD COLUMN points_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN money_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_orders ADD COLUMN card_refunded BIGINT NOT NULL DEFAULT 0;
-- For escrow orders: 'held', 'shipped', 'delivered' (money in the seller's escrow account),
-- 'confirmed' (released to the seller's payable account) or 'cancelled' (refunded). NULL for
-- orders without escrow, and for escrow orders that have not succeeded.
ALTER TABLE payment_orders ADD COLUMN escrow_state TEXT;

-- One row per refund of one order.
CREATE TABLE refunds (
    -- 'rfd_' followed by a ULID; also the ledger transaction that gives the money back, and
    -- the PSP cancellation's idempotency key.
    id               TEXT PRIMARY KEY,
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
    -- 'pending' until the card part (if any) is cancelled at the PSP and the money is booked;
    -- 'succeeded'; or 'failed' (the PSP refused; the parts were given back to the order).
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- 'none', 'requested' (sent, outcome unknown), 'cancelled', 'refused'.
    card_state       TEXT NOT NULL CHECK (card_state IN ('none', 'requested', 'cancelled', 'refused')),
    failure_code     TEXT,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK (points_amount + money_amount + card_amount = amount),
    UNIQUE (request_scope, request_key)
);
CREATE INDEX refunds_by_order ON refunds (payment_order_id, id);
CREATE INDEX refunds_unfinished ON refunds (status, updated_at);
