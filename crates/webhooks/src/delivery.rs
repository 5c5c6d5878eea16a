//! Deliveries: the retry schedule, what a delivery looks like from outside, and one signed POST.

use std::time::Duration;

use ledger::Micros;
use reqwest::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};

use crate::error::WebhookError;
use crate::id::{DeliveryId, EndpointId, EventId};
use crate::signature::{sign, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER};

/// The wait after each failed attempt before the next one: 30 s, 1 min, 5 min, 30 min, 2 h,
/// 6 h, 14 h. Eight attempts spread over about 22.6 hours, so a receiver that is down for a
/// night still gets everything; then the delivery is dead until an operator re-queues it.
pub const RETRY_DELAYS_S: [i64; 7] = [30, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 14 * 3600];
/// Attempts per schedule: the first and one after each wait.
pub const ATTEMPTS_MAX: i64 = RETRY_DELAYS_S.len() as i64 + 1;
/// How long an attempt's request may take before it counts as failed.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// How long a claim lasts: well beyond a request's timeout, so a live worker always records
/// its outcome first; a worker that died leaves the delivery due again when it ends.
pub const LEASE: Duration = Duration::from_secs(60);
/// The most deliveries one worker pass claims; they are sent concurrently.
pub const DELIVERY_BATCH_MAX: i64 = 100;
/// Micros per second.
pub(crate) const MICROS_PER_S: i64 = 1_000_000;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or being sent).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt of the schedule failed; an operator may re-queue it.
    Dead,
    /// The endpoint was deleted before the delivery succeeded.
    Cancelled,
}

impl DeliveryState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<DeliveryState, WebhookError> {
        match value {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "dead" => Ok(DeliveryState::Dead),
            "cancelled" => Ok(DeliveryState::Cancelled),
            other => Err(WebhookError::Internal(format!(
                "unknown delivery state {other:?}"
            ))),
        }
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub endpoint_id: EndpointId,
    pub merchant_id: String,
    pub state: DeliveryState,
    /// Attempts started in the current schedule.
    pub attempts: i64,
    /// When a pending delivery is next due; `None` once it has ended.
    pub next_attempt_at: Option<Micros>,
    /// The HTTP status of the last attempt, if the endpoint answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed: `http_status`, `timeout`, `connect`, `request`,
    /// `attempt_lost` (its worker died), or `secret_unavailable`.
    pub last_error: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub delivered_at: Option<Micros>,
}

/// What one worker pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryPass {
    /// Deliveries claimed and attempted (or cancelled) in this pass.
    pub claimed: usize,
    /// Answered 2xx.
    pub delivered: usize,
    /// Failed and scheduled for another attempt.
    pub retrying: usize,
    /// Failed their last attempt, or lost it with a worker that died: dead.
    pub dead: usize,
    /// Found their endpoint deleted: cancelled without a request.
    pub cancelled: usize,
}

/// How long to wait after the failed attempt number `attempts` (1-based), or `None` when it
/// was the last one.
pub fn retry_delay_s(attempts: i64) -> Option<i64> {
    let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
    RETRY_DELAYS_S.get(index).copied()
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// Anything else: another status (redirects included), or no answer.
    Failed {
        status: Option<u16>,
        error: &'static str,
    },
}

/// What one signed POST carries.
pub(crate) struct Outgoing<'a> {
    pub url: &'a str,
    pub secret: &'a [u8],
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub now: Micros,
}

/// POSTs the event body to the endpoint, signed at `now`. The client follows no redirects: the
/// merchant registered this URL, and a redirect elsewhere is a failed attempt.
pub(crate) async fn send(client: &reqwest::Client, outgoing: &Outgoing<'_>) -> Attempt {
    let timestamp = outgoing.now.div_euclid(MICROS_PER_S);
    let signature = sign(outgoing.secret, timestamp, outgoing.body.as_bytes());
    let request = client
        .post(outgoing.url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static("mypay-webhooks/1"))
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, outgoing.event_id)
        .header(EVENT_TYPE_HEADER, outgoing.event_type)
        .body(outgoing.body.to_owned());
    match request.send().await {
        Ok(response) if response.status().is_success() => Attempt::Delivered {
            status: response.status().as_u16(),
        },
        Ok(response) => Attempt::Failed {
            status: Some(response.status().as_u16()),
            error: "http_status",
        },
        Err(error) if error.is_timeout() => Attempt::Failed {
            status: None,
            error: "timeout",
        },
        Err(error) if error.is_connect() => Attempt::Failed {
            status: None,
            error: "connect",
        },
        Err(_) => Attempt::Failed {
            status: None,
            error: "request",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_has_eight_attempts_over_about_a_day() {
        assert_eq!(ATTEMPTS_MAX, 8);
        assert_eq!(retry_delay_s(1), Some(30));
        assert_eq!(retry_delay_s(2), Some(60));
        assert_eq!(retry_delay_s(3), Some(300));
        assert_eq!(retry_delay_s(7), Some(14 * 3600));
        assert_eq!(retry_delay_s(8), None);
        assert_eq!(retry_delay_s(0), None);
        let total: i64 = RETRY_DELAYS_S.iter().sum();
        assert!((20 * 3600..=24 * 3600).contains(&total), "{total}");
        assert!(RETRY_DELAYS_S.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(LEASE > REQUEST_TIMEOUT_DEFAULT * 2);
    }

    #[test]
    fn states_round_trip() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
            DeliveryState::Cancelled,
        ] {
            assert_eq!(DeliveryState::from_db(state.as_str()).unwrap(), state);
        }
        assert!(DeliveryState::from_db("sent").is_err());
    }
}
