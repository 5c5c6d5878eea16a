//! The payments vocabulary: ids, the states of payments and payment orders, and the rule that
//! spreads a checkout's funding over its orders, each with its tests.

use crate::PaymentError;

ids::ulid_id!(
    /// A payment (one checkout): `pay_` and a ULID.
    PaymentId,
    "pay_"
);

ids::ulid_id!(
    /// A payment order (one seller's part of a payment): `po_` and a ULID. It is also the id
    /// of the ledger transaction that books the order to the seller.
    PaymentOrderKey,
    "po_"
);

impl PaymentOrderKey {
    /// The ledger transaction that books the order to its seller.
    pub fn booking_id(&self) -> ledger::TransactionId {
        ledger::TransactionId::parse(&self.0).expect("a po_ id is a valid ledger id")
    }

    /// The ledger hold on the buyer's points while the order executes.
    pub fn points_hold_id(&self) -> ledger::HoldId {
        ledger::HoldId::parse(&format!("{}.points", self.0)).expect("a valid ledger id")
    }

    /// The ledger transaction that takes the held points.
    pub fn points_taken_id(&self) -> ledger::TransactionId {
        ledger::TransactionId::parse(&format!("{}.points", self.0)).expect("a valid ledger id")
    }
}

ids::ulid_id!(
    /// A refund of a payment order: `rfd_` and a ULID. It is also the PSP cancellation's
    /// idempotency key.
    RefundId,
    "rfd_"
);

/// The client's id of a checkout: globally unique, 1 to 64 letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckoutId(String);

impl CheckoutId {
    pub fn parse(value: &str) -> Result<CheckoutId, PaymentError> {
        let valid = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(CheckoutId(value.to_owned()))
        } else {
            Err(PaymentError::invalid(
                "checkout_id",
                "must be 1 to 64 letters, digits, - or _",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a payment order is (seed 001's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    NotStarted,
    Executing,
    Success,
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::NotStarted => "NOT_STARTED",
            OrderStatus::Executing => "EXECUTING",
            OrderStatus::Success => "SUCCESS",
            OrderStatus::Failed => "FAILED",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<OrderStatus, PaymentError> {
        match value {
            "NOT_STARTED" => Ok(OrderStatus::NotStarted),
            "EXECUTING" => Ok(OrderStatus::Executing),
            "SUCCESS" => Ok(OrderStatus::Success),
            "FAILED" => Ok(OrderStatus::Failed),
            other => Err(PaymentError::Internal(format!(
                "unknown order status {other:?}"
            ))),
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Success | OrderStatus::Failed)
    }
}

/// Where a payment is: executing until every order is final, then the summary of its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Executing,
    Succeeded,
    Failed,
    PartiallySucceeded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Executing => "executing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::PartiallySucceeded => "partially_succeeded",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<PaymentStatus, PaymentError> {
        match value {
            "executing" => Ok(PaymentStatus::Executing),
            "succeeded" => Ok(PaymentStatus::Succeeded),
            "failed" => Ok(PaymentStatus::Failed),
            "partially_succeeded" => Ok(PaymentStatus::PartiallySucceeded),
            other => Err(PaymentError::Internal(format!(
                "unknown payment status {other:?}"
            ))),
        }
    }

    /// The payment's status once its orders are as given: executing while any is not final.
    pub fn of_orders(statuses: impl IntoIterator<Item = OrderStatus>) -> PaymentStatus {
        let (mut succeeded, mut failed, mut open) = (0, 0, 0);
        for status in statuses {
            match status {
                OrderStatus::Success => succeeded += 1,
                OrderStatus::Failed => failed += 1,
                OrderStatus::NotStarted | OrderStatus::Executing => open += 1,
            }
        }
        match (succeeded, failed, open) {
            (_, _, 1..) => PaymentStatus::Executing,
            (_, 0, 0) => PaymentStatus::Succeeded,
            (0, _, 0) => PaymentStatus::Failed,
            _ => PaymentStatus::PartiallySucceeded,
        }
    }
}

/// Where the card part of an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    /// No card part, or not sent yet.
    None,
    /// Sent; the outcome is not known. The PSP is asked before anything else is done.
    Requested,
    Approved,
    Declined,
}

impl CardState {
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::None => "none",
            CardState::Requested => "requested",
            CardState::Approved => "approved",
            CardState::Declined => "declined",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<CardState, PaymentError> {
        match value {
            "none" => Ok(CardState::None),
            "requested" => Ok(CardState::Requested),
            "approved" => Ok(CardState::Approved),
            "declined" => Ok(CardState::Declined),
            other => Err(PaymentError::Internal(format!(
                "unknown card state {other:?}"
            ))),
        }
    }
}

/// Where an escrow order's money stands. The money is in the seller's escrow account until the
/// order is confirmed (then it is in the seller's payable account) or cancelled (refunded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscrowState {
    Held,
    Shipped,
    Delivered,
    Confirmed,
    Cancelled,
}

impl EscrowState {
    pub fn as_str(self) -> &'static str {
        match self {
            EscrowState::Held => "held",
            EscrowState::Shipped => "shipped",
            EscrowState::Delivered => "delivered",
            EscrowState::Confirmed => "confirmed",
            EscrowState::Cancelled => "cancelled",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<EscrowState, PaymentError> {
        match value {
            "held" => Ok(EscrowState::Held),
            "shipped" => Ok(EscrowState::Shipped),
            "delivered" => Ok(EscrowState::Delivered),
            "confirmed" => Ok(EscrowState::Confirmed),
            "cancelled" => Ok(EscrowState::Cancelled),
            other => Err(PaymentError::Internal(format!(
                "unknown escrow state {other:?}"
            ))),
        }
    }

    /// Whether the order's money is still in the seller's escrow account.
    pub fn holds_money(self) -> bool {
        matches!(
            self,
            EscrowState::Held | EscrowState::Shipped | EscrowState::Delivered
        )
    }
}

/// How much of an order (or a payment) each funding source pays, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub points: i64,
    pub money: i64,
    pub card: i64,
}

impl Split {
    pub fn total(&self) -> Option<i64> {
        self.points.checked_add(self.money)?.checked_add(self.card)
    }
}

/// Spreads the funding over the orders in request order: each order takes what is left of
/// the points first, then of the money, then of the card. Refunds give back along the same
/// order (points, money, card), so the rule is easy to state to a buyer. The funding must add
/// up to the orders' total exactly.
pub fn allocate(orders: &[i64], funding: Split) -> Result<Vec<Split>, PaymentError> {
    let total = orders
        .iter()
        .try_fold(0i64, |sum, amount| sum.checked_add(*amount))
        .ok_or(PaymentError::AmountOutOfRange)?;
    if funding.total() != Some(total)
        || [funding.points, funding.money, funding.card]
            .iter()
            .any(|part| *part < 0)
    {
        return Err(PaymentError::FundingMismatch);
    }
    let mut left = funding;
    let splits = orders
        .iter()
        .map(|amount| {
            let points = left.points.min(*amount);
            let money = left.money.min(amount - points);
            let card = amount - points - money;
            left.points -= points;
            left.money -= money;
            left.card -= card;
            Split {
                points,
                money,
                card,
            }
        })
        .collect();
    debug_assert_eq!(left, Split::default(), "the funding adds up to the total");
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn funding_fills_orders_points_first_then_money_then_card() {
        let funding = Split {
            points: 1_000,
            money: 9_000,
            card: 5_000,
        };
        let splits = allocate(&[10_000, 5_000], funding).unwrap();
        assert_eq!(
            splits[0],
            Split {
                points: 1_000,
                money: 9_000,
                card: 0
            }
        );
        assert_eq!(
            splits[1],
            Split {
                points: 0,
                money: 0,
                card: 5_000
            }
        );
    }

    #[test]
    fn funding_that_does_not_add_up_is_refused() {
        let funding = Split {
            points: 0,
            money: 9_000,
            card: 0,
        };
        assert!(matches!(
            allocate(&[10_000], funding),
            Err(PaymentError::FundingMismatch)
        ));
        let negative = Split {
            points: -1,
            money: 10_001,
            card: 0,
        };
        assert!(matches!(
            allocate(&[10_000], negative),
            Err(PaymentError::FundingMismatch)
        ));
    }

    #[test]
    fn a_payment_is_executing_until_every_order_is_final() {
        use OrderStatus::*;
        assert_eq!(
            PaymentStatus::of_orders([Success, Executing]),
            PaymentStatus::Executing
        );
        assert_eq!(
            PaymentStatus::of_orders([Success, Success]),
            PaymentStatus::Succeeded
        );
        assert_eq!(
            PaymentStatus::of_orders([Failed, Failed]),
            PaymentStatus::Failed
        );
        assert_eq!(
            PaymentStatus::of_orders([Success, Failed]),
            PaymentStatus::PartiallySucceeded
        );
    }

    #[test]
    fn ids_round_trip_and_checkout_ids_are_checked() {
        let id = PaymentOrderKey::generate();
        assert_eq!(PaymentOrderKey::parse(id.as_str()), Some(id.clone()));
        assert!(PaymentOrderKey::parse("po_nope").is_none());
        assert!(id.points_hold_id().as_str().ends_with(".points"));
        assert!(CheckoutId::parse("chk-2026_11").is_ok());
        assert!(CheckoutId::parse("").is_err());
        assert!(CheckoutId::parse("has space").is_err());
    }

    proptest! {
        #[test]
        fn every_order_is_paid_in_full_and_every_source_exactly_once(
            orders in proptest::collection::vec(1i64..1_000_000, 1..8),
            cut_a in 0i64..=1_000, cut_b in 0i64..=1_000,
        ) {
            let total: i64 = orders.iter().sum();
            let (low, high) = (cut_a.min(cut_b), cut_a.max(cut_b));
            let points = total * low / 1_000;
            let money = total * high / 1_000 - points;
            let card = total - points - money;
            let funding = Split { points, money, card };
            let splits = allocate(&orders, funding).unwrap();
            for (split, amount) in splits.iter().zip(&orders) {
                prop_assert_eq!(split.total(), Some(*amount));
                prop_assert!(split.points >= 0 && split.money >= 0 && split.card >= 0);
            }
            prop_assert_eq!(splits.iter().map(|s| s.points).sum::<i64>(), points);
            prop_assert_eq!(splits.iter().map(|s| s.money).sum::<i64>(), money);
            prop_assert_eq!(splits.iter().map(|s| s.card).sum::<i64>(), card);
        }
    }
}
