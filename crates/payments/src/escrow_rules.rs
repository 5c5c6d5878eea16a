//! The escrow state machine, without I/O: who may take which step from which state, and what
//! each step writes. The service reads an escrow, asks these rules, and writes the answer under
//! the version it read, so every rule here is decided on the state it is applied to.
//!
//! ```text
//! held ──ship──► shipped ──deliver──► delivered ──(buyer, staff, or confirm_at)──► confirmed
//!  │               │  └──────────(buyer, staff)───────────┘
//!  └───────────────┴──── cancel (until cancel_until) ─────────────────────────────► cancelled
//! ```
//!
//! Cancelling applies from delivered too, while the window lasts: a buyer who refuses the goods
//! on arrival within it gets the money back.
//!
//! A dispute (any of the three parties, in held, shipped or delivered) freezes everything but
//! its resolution: no step, no automatic confirmation, no cancellation; resolving it moves
//! `cancel_until` and `confirm_at` later by the time it lasted. Confirming and cancelling first
//! claim the escrow (`closing`), then move the money, then reach their state; a claim makes the
//! other impossible, and a repeated step continues a claim of its own kind.

use std::time::Duration;

use ledger::Micros;

use crate::domain::{EscrowState, PaymentOrderKey};
use crate::PaymentError;

/// The longest tracking number accepted.
pub const TRACKING_NUMBER_LEN_MAX: usize = 64;
/// The longest reason a step may give, in characters: a cancellation's reason becomes its
/// refund's, which the PSP takes up to 200 characters.
pub const ESCROW_REASON_CHARS_MAX: usize = 200;

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscrowActor {
    /// The member who paid the order.
    Buyer,
    /// The merchant paid by the order (its own merchant key).
    Seller,
    /// Operators: admin and platform keys.
    Staff,
    /// The automatic confirmation, `escrow_auto_confirm_after` past delivery.
    Timer,
}

impl EscrowActor {
    pub fn as_str(self) -> &'static str {
        match self {
            EscrowActor::Buyer => "buyer",
            EscrowActor::Seller => "seller",
            EscrowActor::Staff => "staff",
            EscrowActor::Timer => "timer",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<EscrowActor, PaymentError> {
        match value {
            "buyer" => Ok(EscrowActor::Buyer),
            "seller" => Ok(EscrowActor::Seller),
            "staff" => Ok(EscrowActor::Staff),
            "timer" => Ok(EscrowActor::Timer),
            other => Err(PaymentError::Internal(format!(
                "unknown escrow actor {other:?}"
            ))),
        }
    }
}

/// How an escrow is being ended, recorded before its money moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscrowClosing {
    /// Releasing the money to the seller's payable account.
    Confirm,
    /// Refunding the buyer.
    Cancel,
}

impl EscrowClosing {
    pub fn as_str(self) -> &'static str {
        match self {
            EscrowClosing::Confirm => "confirm",
            EscrowClosing::Cancel => "cancel",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<EscrowClosing, PaymentError> {
        match value {
            "confirm" => Ok(EscrowClosing::Confirm),
            "cancel" => Ok(EscrowClosing::Cancel),
            other => Err(PaymentError::Internal(format!(
                "unknown escrow closing {other:?}"
            ))),
        }
    }
}

/// Why an escrow step was refused, each with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscrowError {
    /// No such order, not an escrow order, an escrow order that never succeeded, or (at the
    /// API) someone else's order.
    #[error("payment order {0} has no escrow")]
    NotFound(String),
    /// The step does not apply to the escrow's state.
    #[error("cannot {action} an escrow that is {state}")]
    StateInvalid {
        action: &'static str,
        state: &'static str,
    },
    /// A dispute is open: only staff resolving it may change the escrow.
    #[error("the escrow is under dispute; staff must resolve it first")]
    Disputed,
    /// The cancellation window ended at the given time.
    #[error("the cancellation window of this escrow has closed")]
    CancelWindowClosed { cancel_until: Micros },
    /// A refund of the order is being made; the escrow confirms once it ends.
    #[error("a refund of this order is in progress; confirm once it has ended")]
    RefundInProgress,
    /// The PSP refused the cancellation's refund (its card part): nothing was given back and
    /// the escrow runs on. The same refund answers again, so staff take it from here.
    #[error("the refund {refund} of this cancellation was refused ({failure_code})")]
    RefundRefused {
        refund: String,
        failure_code: String,
    },
    /// The caller may see the escrow but not take this step.
    #[error("the {actor} may not {action} an escrow")]
    NotAllowed {
        actor: &'static str,
        action: &'static str,
    },
}

impl EscrowError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            EscrowError::NotFound(_) => "escrow_not_found",
            EscrowError::StateInvalid { .. } => "escrow_state_invalid",
            EscrowError::Disputed => "escrow_disputed",
            EscrowError::CancelWindowClosed { .. } => "escrow_cancel_window_closed",
            EscrowError::RefundInProgress => "refund_in_progress",
            EscrowError::RefundRefused { .. } => "escrow_refund_refused",
            EscrowError::NotAllowed { .. } => "escrow_action_forbidden",
        }
    }
}

/// An escrow as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escrow {
    /// The escrow order (`po_…`); an escrow has no id of its own.
    pub payment_order_id: PaymentOrderKey,
    pub state: EscrowState,
    /// When the order succeeded and the money entered the seller's escrow account.
    pub held_at: Micros,
    /// Until when (inclusive) the escrow may be cancelled.
    pub cancel_until: Micros,
    pub shipped_at: Option<Micros>,
    pub tracking_number: Option<String>,
    pub delivered_at: Option<Micros>,
    /// When a delivered escrow confirms itself.
    pub confirm_at: Option<Micros>,
    /// When the open dispute began; `None` when no dispute is open.
    pub disputed_at: Option<Micros>,
    pub disputed_by: Option<EscrowActor>,
    /// How the escrow is being ended while its money moves.
    pub closing: Option<EscrowClosing>,
    pub closed_at: Option<Micros>,
    /// Who confirmed or cancelled it (set with the claim).
    pub closed_by: Option<EscrowActor>,
    /// What the confirmation releases to the seller, fixed when it claims the escrow.
    pub release_amount: Option<i64>,
    /// The reason a cancellation gave (set with the claim).
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub updated_at: Micros,
}

/// What a confirmation or cancellation finds when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Begin {
    /// The escrow already ended this way: answer it as it is.
    Done,
    /// An earlier attempt claimed it this way and stopped before the end: continue it.
    Continue,
    /// Claim it (write this) and go on.
    Claim(Box<Escrow>),
}

impl Escrow {
    /// The state as clients should read it: a claimed escrow is `confirming` or `cancelling`.
    fn shown_state(&self) -> &'static str {
        match self.closing {
            Some(EscrowClosing::Confirm) => "confirming",
            Some(EscrowClosing::Cancel) => "cancelling",
            None => self.state.as_str(),
        }
    }

    fn refuse(&self, action: &'static str) -> EscrowError {
        EscrowError::StateInvalid {
            action,
            state: self.shown_state(),
        }
    }

    /// Steps that change a running escrow need it unclaimed, still holding the money, and
    /// free of disputes.
    fn check_running(&self, action: &'static str) -> Result<(), EscrowError> {
        if self.closing.is_some() || !self.state.holds_money() {
            return Err(self.refuse(action));
        }
        if self.disputed_at.is_some() {
            return Err(EscrowError::Disputed);
        }
        Ok(())
    }

    /// The seller (or staff) sent the goods. Shipping again with another tracking number
    /// corrects it; with the same one (or none) it answers the escrow as it is.
    pub(crate) fn ship(
        &self,
        actor: EscrowActor,
        tracking_number: Option<String>,
        now: Micros,
    ) -> Result<Option<Escrow>, EscrowError> {
        allow(actor, "ship", &[EscrowActor::Seller, EscrowActor::Staff])?;
        let correction = tracking_number.is_some() && tracking_number != self.tracking_number;
        if self.state == EscrowState::Shipped && self.closing.is_none() && !correction {
            return Ok(None);
        }
        self.check_running("ship")?;
        match self.state {
            EscrowState::Held => Ok(Some(Escrow {
                state: EscrowState::Shipped,
                shipped_at: Some(now),
                tracking_number,
                ..self.clone()
            })),
            EscrowState::Shipped => Ok(Some(Escrow {
                tracking_number,
                ..self.clone()
            })),
            _ => Err(self.refuse("ship")),
        }
    }

    /// The goods arrived. The automatic confirmation is due `auto_confirm_after` later.
    pub(crate) fn deliver(
        &self,
        actor: EscrowActor,
        auto_confirm_after: Duration,
        now: Micros,
    ) -> Result<Option<Escrow>, EscrowError> {
        allow(actor, "deliver", &[EscrowActor::Seller, EscrowActor::Staff])?;
        if self.state == EscrowState::Delivered && self.closing.is_none() {
            return Ok(None);
        }
        self.check_running("deliver")?;
        if self.state != EscrowState::Shipped {
            return Err(self.refuse("deliver"));
        }
        Ok(Some(Escrow {
            state: EscrowState::Delivered,
            delivered_at: Some(now),
            confirm_at: Some(now.saturating_add(micros(auto_confirm_after))),
            ..self.clone()
        }))
    }

    /// Starts a confirmation: the buyer or staff once the goods are on their way, the timer
    /// once a delivered escrow's `confirm_at` has come.
    pub(crate) fn begin_confirm(
        &self,
        actor: EscrowActor,
        now: Micros,
    ) -> Result<Begin, EscrowError> {
        allow(
            actor,
            "confirm",
            &[EscrowActor::Buyer, EscrowActor::Staff, EscrowActor::Timer],
        )?;
        if self.state == EscrowState::Confirmed {
            return Ok(Begin::Done);
        }
        if self.closing == Some(EscrowClosing::Confirm) {
            return Ok(Begin::Continue);
        }
        self.check_running("confirm")?;
        let due = self.confirm_at.is_some_and(|at| at <= now);
        let ready = match actor {
            EscrowActor::Timer => self.state == EscrowState::Delivered && due,
            _ => matches!(self.state, EscrowState::Shipped | EscrowState::Delivered),
        };
        if !ready {
            return Err(self.refuse("confirm"));
        }
        Ok(Begin::Claim(Box::new(Escrow {
            closing: Some(EscrowClosing::Confirm),
            closed_by: Some(actor),
            ..self.clone()
        })))
    }

    /// Starts a cancellation: any party, while the money is held, no dispute is open and the
    /// window has not closed.
    pub(crate) fn begin_cancel(
        &self,
        actor: EscrowActor,
        reason: Option<String>,
        now: Micros,
    ) -> Result<Begin, EscrowError> {
        allow(
            actor,
            "cancel",
            &[EscrowActor::Buyer, EscrowActor::Seller, EscrowActor::Staff],
        )?;
        if self.state == EscrowState::Cancelled {
            return Ok(Begin::Done);
        }
        if self.closing == Some(EscrowClosing::Cancel) {
            return Ok(Begin::Continue);
        }
        self.check_running("cancel")?;
        if now > self.cancel_until {
            return Err(EscrowError::CancelWindowClosed {
                cancel_until: self.cancel_until,
            });
        }
        Ok(Begin::Claim(Box::new(Escrow {
            closing: Some(EscrowClosing::Cancel),
            closed_by: Some(actor),
            cancel_reason: reason,
            ..self.clone()
        })))
    }

    /// The end of a claimed escrow, once its money moved.
    pub(crate) fn close(&self, now: Micros) -> Escrow {
        let state = match self.closing {
            Some(EscrowClosing::Confirm) => EscrowState::Confirmed,
            Some(EscrowClosing::Cancel) => EscrowState::Cancelled,
            None => unreachable!("only a claimed escrow is closed"),
        };
        Escrow {
            state,
            closing: None,
            closed_at: Some(now),
            ..self.clone()
        }
    }

    /// Gives a claimed cancellation up (its refund was refused): the escrow runs on as before.
    pub(crate) fn unclaim(&self) -> Escrow {
        Escrow {
            closing: None,
            closed_by: None,
            cancel_reason: None,
            ..self.clone()
        }
    }

    /// Opens a dispute. A delivered escrow whose automatic confirmation is due can no longer
    /// be disputed: it is confirmed, whether or not the timer has run yet.
    pub(crate) fn dispute(
        &self,
        actor: EscrowActor,
        now: Micros,
    ) -> Result<Option<Escrow>, EscrowError> {
        allow(
            actor,
            "dispute",
            &[EscrowActor::Buyer, EscrowActor::Seller, EscrowActor::Staff],
        )?;
        if self.disputed_at.is_some() {
            return Ok(None);
        }
        self.check_running("dispute")?;
        if self.confirm_at.is_some_and(|at| at <= now) {
            return Err(EscrowError::StateInvalid {
                action: "dispute",
                state: "due to confirm",
            });
        }
        Ok(Some(Escrow {
            disputed_at: Some(now),
            disputed_by: Some(actor),
            ..self.clone()
        }))
    }

    /// Resolves the open dispute (staff only): the timers run again, each moved later by the
    /// time the dispute lasted. With no dispute open it answers the escrow as it is.
    pub(crate) fn resolve(
        &self,
        actor: EscrowActor,
        now: Micros,
    ) -> Result<Option<Escrow>, EscrowError> {
        allow(actor, "resolve", &[EscrowActor::Staff])?;
        let Some(since) = self.disputed_at else {
            return Ok(None);
        };
        let paused = now.saturating_sub(since).max(0);
        Ok(Some(Escrow {
            cancel_until: self.cancel_until.saturating_add(paused),
            confirm_at: self.confirm_at.map(|at| at.saturating_add(paused)),
            disputed_at: None,
            disputed_by: None,
            ..self.clone()
        }))
    }
}

fn allow(
    actor: EscrowActor,
    action: &'static str,
    allowed: &[EscrowActor],
) -> Result<(), EscrowError> {
    if allowed.contains(&actor) {
        Ok(())
    } else {
        Err(EscrowError::NotAllowed {
            actor: actor.as_str(),
            action,
        })
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Checks a tracking number: 1 to 64 letters, digits or `-`.
pub(crate) fn tracking_number(value: Option<String>) -> Result<Option<String>, PaymentError> {
    match value {
        None => Ok(None),
        Some(value)
            if (1..=TRACKING_NUMBER_LEN_MAX).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Ok(Some(value))
        }
        Some(_) => Err(PaymentError::invalid(
            "tracking_number",
            "must be 1 to 64 letters, digits or -",
        )),
    }
}

/// Checks a step's reason: at most 200 characters, no control characters.
pub(crate) fn reason(value: Option<String>) -> Result<Option<String>, PaymentError> {
    match value {
        Some(text)
            if text.chars().count() > ESCROW_REASON_CHARS_MAX
                || text.chars().any(char::is_control) =>
        {
            Err(PaymentError::invalid(
                "reason",
                "must be at most 200 characters without control characters",
            ))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EscrowActor::{Buyer, Seller, Staff, Timer};

    const HOUR: Micros = 3_600_000_000;
    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    fn held() -> Escrow {
        Escrow {
            payment_order_id: PaymentOrderKey::generate(),
            state: EscrowState::Held,
            held_at: 0,
            cancel_until: 72 * HOUR,
            shipped_at: None,
            tracking_number: None,
            delivered_at: None,
            confirm_at: None,
            disputed_at: None,
            disputed_by: None,
            closing: None,
            closed_at: None,
            closed_by: None,
            release_amount: None,
            cancel_reason: None,
            version: 1,
            updated_at: 0,
        }
    }

    fn delivered(at: Micros) -> Escrow {
        let shipped = held().ship(Seller, None, at).unwrap().unwrap();
        shipped.deliver(Seller, WEEK, at).unwrap().unwrap()
    }

    fn code<T: std::fmt::Debug>(result: Result<T, EscrowError>) -> &'static str {
        result.expect_err("refused").code()
    }

    #[test]
    fn the_happy_path_sets_its_times() {
        let shipped = held()
            .ship(Seller, Some("6012-3456-7890".into()), HOUR)
            .unwrap()
            .unwrap();
        assert_eq!(shipped.state, EscrowState::Shipped);
        assert_eq!(shipped.shipped_at, Some(HOUR));
        let delivered = shipped.deliver(Staff, WEEK, 2 * HOUR).unwrap().unwrap();
        assert_eq!(delivered.delivered_at, Some(2 * HOUR));
        assert_eq!(delivered.confirm_at, Some(2 * HOUR + 168 * HOUR));
        let Begin::Claim(claimed) = delivered.begin_confirm(Buyer, 3 * HOUR).unwrap() else {
            panic!("a delivered escrow is claimed by its buyer's confirmation");
        };
        assert_eq!(claimed.closing, Some(EscrowClosing::Confirm));
        let confirmed = claimed.close(3 * HOUR);
        assert_eq!(confirmed.state, EscrowState::Confirmed);
        assert_eq!(confirmed.closed_by, Some(Buyer));
        assert_eq!(confirmed.closing, None);
    }

    #[test]
    fn repeating_a_step_changes_nothing_and_a_new_tracking_number_corrects_it() {
        let shipped = held().ship(Seller, Some("A1".into()), 1).unwrap().unwrap();
        assert_eq!(shipped.ship(Seller, Some("A1".into()), 2), Ok(None));
        assert_eq!(shipped.ship(Staff, None, 2), Ok(None));
        let corrected = shipped.ship(Seller, Some("B2".into()), 2).unwrap().unwrap();
        assert_eq!(corrected.tracking_number.as_deref(), Some("B2"));
        assert_eq!(corrected.shipped_at, Some(1));
        let delivered = delivered(5);
        assert_eq!(delivered.deliver(Seller, WEEK, 9), Ok(None));
        let confirmed = match delivered.begin_confirm(Buyer, 6).unwrap() {
            Begin::Claim(claimed) => {
                assert_eq!(claimed.begin_confirm(Staff, 7), Ok(Begin::Continue));
                claimed.close(7)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(confirmed.begin_confirm(Buyer, 8), Ok(Begin::Done));
    }

    #[test]
    fn steps_out_of_order_are_refused() {
        assert_eq!(
            code(held().deliver(Seller, WEEK, 1)),
            "escrow_state_invalid"
        );
        assert_eq!(code(held().begin_confirm(Buyer, 1)), "escrow_state_invalid");
        let confirmed = match delivered(1).begin_confirm(Buyer, 2).unwrap() {
            Begin::Claim(claimed) => claimed.close(2),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(confirmed.ship(Seller, None, 3)),
            "escrow_state_invalid"
        );
        assert_eq!(
            code(confirmed.begin_cancel(Buyer, None, 3)),
            "escrow_state_invalid"
        );
        assert_eq!(code(confirmed.dispute(Buyer, 3)), "escrow_state_invalid");
        // A claimed confirmation excludes a cancellation, and the other way round.
        let escrow = held();
        let Begin::Claim(cancelling) = escrow.begin_cancel(Buyer, None, 1).unwrap() else {
            panic!("a held escrow can be cancelled");
        };
        assert_eq!(
            cancelling.begin_confirm(Staff, 2),
            Err(EscrowError::StateInvalid {
                action: "confirm",
                state: "cancelling"
            })
        );
        assert_eq!(
            cancelling.begin_cancel(Seller, None, 2),
            Ok(Begin::Continue)
        );
        assert_eq!(cancelling.unclaim(), escrow);
    }

    #[test]
    fn each_party_takes_only_its_own_steps() {
        let shipped = held().ship(Staff, None, 1).unwrap().unwrap();
        assert_eq!(code(held().ship(Buyer, None, 1)), "escrow_action_forbidden");
        assert_eq!(
            code(shipped.deliver(Buyer, WEEK, 1)),
            "escrow_action_forbidden"
        );
        assert_eq!(
            code(shipped.begin_confirm(Seller, 1)),
            "escrow_action_forbidden"
        );
        assert_eq!(code(shipped.resolve(Buyer, 1)), "escrow_action_forbidden");
        assert_eq!(code(shipped.resolve(Seller, 1)), "escrow_action_forbidden");
        assert_eq!(
            code(shipped.begin_cancel(Timer, None, 1)),
            "escrow_action_forbidden"
        );
        for actor in [Buyer, Seller, Staff] {
            assert!(shipped.dispute(actor, 1).unwrap().is_some());
            assert!(matches!(
                shipped.begin_cancel(actor, None, 1),
                Ok(Begin::Claim(_))
            ));
        }
    }

    #[test]
    fn the_timer_confirms_a_delivered_escrow_exactly_when_it_is_due() {
        let escrow = delivered(0);
        let due = escrow.confirm_at.unwrap();
        assert_eq!(
            code(escrow.begin_confirm(Timer, due - 1)),
            "escrow_state_invalid"
        );
        assert!(matches!(
            escrow.begin_confirm(Timer, due),
            Ok(Begin::Claim(_))
        ));
        let shipped = held().ship(Seller, None, 0).unwrap().unwrap();
        assert_eq!(
            code(shipped.begin_confirm(Timer, i64::MAX)),
            "escrow_state_invalid"
        );
    }

    #[test]
    fn the_cancel_window_includes_its_last_instant() {
        let escrow = held();
        assert!(matches!(
            escrow.begin_cancel(Buyer, None, escrow.cancel_until),
            Ok(Begin::Claim(_))
        ));
        assert_eq!(
            escrow.begin_cancel(Buyer, None, escrow.cancel_until + 1),
            Err(EscrowError::CancelWindowClosed {
                cancel_until: escrow.cancel_until
            })
        );
    }

    #[test]
    fn a_dispute_freezes_the_escrow_and_its_resolution_moves_the_deadlines() {
        let escrow = delivered(10 * HOUR);
        let disputed = escrow.dispute(Buyer, 11 * HOUR).unwrap().unwrap();
        assert_eq!(disputed.dispute(Seller, 12 * HOUR), Ok(None));
        let late = 30 * 24 * HOUR;
        assert_eq!(code(disputed.begin_confirm(Timer, late)), "escrow_disputed");
        assert_eq!(code(disputed.begin_confirm(Buyer, late)), "escrow_disputed");
        assert_eq!(
            code(disputed.begin_cancel(Buyer, None, 12 * HOUR)),
            "escrow_disputed"
        );
        assert_eq!(
            code(disputed.ship(Seller, Some("X".into()), 12 * HOUR)),
            "escrow_disputed"
        );
        let resolved = disputed.resolve(Staff, 11 * HOUR + late).unwrap().unwrap();
        assert_eq!(resolved.disputed_at, None);
        assert_eq!(resolved.cancel_until, escrow.cancel_until + late);
        assert_eq!(resolved.confirm_at, Some(escrow.confirm_at.unwrap() + late));
        assert_eq!(resolved.resolve(Staff, late), Ok(None));
    }

    #[test]
    fn a_due_escrow_cannot_be_disputed_any_more() {
        let escrow = delivered(0);
        let due = escrow.confirm_at.unwrap();
        assert!(escrow.dispute(Buyer, due - 1).unwrap().is_some());
        assert_eq!(code(escrow.dispute(Buyer, due)), "escrow_state_invalid");
    }

    #[test]
    fn tracking_numbers_and_reasons_are_checked() {
        assert_eq!(tracking_number(None).unwrap(), None);
        assert!(tracking_number(Some("CJ-6012345678".into())).is_ok());
        assert!(tracking_number(Some(String::new())).is_err());
        assert!(tracking_number(Some("has space".into())).is_err());
        assert!(tracking_number(Some("9".repeat(65))).is_err());
        assert!(reason(Some("상품이 파손되어 도착했습니다".into())).is_ok());
        assert!(reason(Some("a\nb".into())).is_err());
        assert!(reason(Some("가".repeat(200))).is_ok());
        assert!(reason(Some("가".repeat(201))).is_err());
    }
}
