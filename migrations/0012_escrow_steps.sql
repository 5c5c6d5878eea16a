-- Escrow steps: what the seller shipped under, who disputed, and how an escrow ends.
--
-- Portable across SQLite and PostgreSQL: ADD COLUMN without a default (NULL-friendly CHECKs
-- only) and a partial index work on both.

-- The carrier's tracking number the seller shipped under (안전결제 follows the parcel).
ALTER TABLE escrows ADD COLUMN tracking_number TEXT;

-- Who opened the dispute in progress: 'buyer', 'seller' or 'staff'; NULL when none is open.
ALTER TABLE escrows ADD COLUMN disputed_by TEXT CHECK (disputed_by IN ('buyer', 'seller', 'staff'));

-- How the escrow is being ended, written before any money moves: 'confirm' (the release to
-- the seller's payable account) or 'cancel' (the refund to the buyer). It makes confirming and
-- cancelling exclusive (each claims the escrow with a conditional update while it is NULL),
-- and it tells the due pass which escrows a crash left between their money and their state.
-- Cleared when the escrow reaches confirmed or cancelled, or when a refused refund gives the
-- escrow back.
ALTER TABLE escrows ADD COLUMN closing TEXT CHECK (closing IN ('confirm', 'cancel'));

-- When and by whom the escrow was confirmed or cancelled: 'buyer', 'seller', 'staff' or
-- 'timer' (the automatic confirmation after delivery). closed_by is set with the claim.
ALTER TABLE escrows ADD COLUMN closed_at BIGINT;
ALTER TABLE escrows ADD COLUMN closed_by TEXT CHECK (closed_by IN ('buyer', 'seller', 'staff', 'timer'));

-- What a confirmation releases to the seller: the order's amount less what refunds had taken
-- when it claimed the escrow. It is read under the order's row, whose version the claim
-- raises, so a refund reserved from an earlier read starts over and then takes from payable.
-- Fixed with the claim, so the release transaction posted again is the same transaction.
ALTER TABLE escrows ADD COLUMN release_amount BIGINT CHECK (release_amount >= 0);

-- The reason a cancellation gave, kept with its claim so that finishing it later (the due
-- pass) asks the refund with exactly the words of the first attempt.
ALTER TABLE escrows ADD COLUMN cancel_reason TEXT;

-- Escrows a crash left half-ended, for the due pass; few at any time.
CREATE INDEX escrows_closing ON escrows (updated_at) WHERE closing IS NOT NULL;
