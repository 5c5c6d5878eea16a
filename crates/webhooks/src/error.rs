//! One named error per refused precondition, each with a stable public code. Messages never
//! carry a secret.

use bank_accounts::KeyError;

/// Why a webhook request was refused, or a pass of the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A merchant id is not `mer_` followed by letters and digits, so it names no merchant.
    #[error("merchant {0} does not exist")]
    MerchantIdInvalid(String),
    /// An endpoint URL is not an absolute http or https URL this service may call.
    #[error("url {0}")]
    UrlInvalid(&'static str),
    /// A subscribed event type is not one mypay sends.
    #[error("unknown event type {0:?}")]
    EventTypeUnknown(String),
    /// The merchant has as many live endpoints as allowed.
    #[error("at most {0} webhook endpoints may be registered per merchant")]
    EndpointLimitReached(i64),
    /// No such endpoint for this merchant.
    #[error("webhook endpoint {0} does not exist")]
    EndpointNotFound(String),
    /// No such delivery.
    #[error("webhook delivery {0} does not exist")]
    DeliveryNotFound(String),
    /// Only a dead delivery may be re-queued; the others are pending, delivered or cancelled.
    #[error("webhook delivery {id} is {state}, not dead")]
    DeliveryNotDead {
        /// The delivery.
        id: String,
        /// Its state.
        state: String,
    },
    /// An event names a resource whose id or type is empty or too long, or a negative version.
    #[error("event {0}")]
    EventInvalid(&'static str),
    /// The same type, resource and version was recorded before with other content: one change
    /// reported twice in two ways, which is a bug in the caller.
    #[error("an event {event_id} for the same resource version was recorded with other content")]
    EventConflict {
        /// The event recorded first.
        event_id: String,
    },
    /// A key is missing or a sealed secret does not open; the detail is for the logs.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A bug or an impossible stored state; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
}

impl WebhookError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::MerchantIdInvalid(_) => "merchant_not_found",
            WebhookError::UrlInvalid(_) => "webhook_url_invalid",
            WebhookError::EventTypeUnknown(_) => "webhook_event_type_unknown",
            WebhookError::EndpointLimitReached(_) => "webhook_endpoint_limit_reached",
            WebhookError::EndpointNotFound(_) => "webhook_endpoint_not_found",
            WebhookError::DeliveryNotFound(_) => "webhook_delivery_not_found",
            WebhookError::DeliveryNotDead { .. } => "webhook_delivery_not_dead",
            WebhookError::EventInvalid(_) => "webhook_event_invalid",
            WebhookError::EventConflict { .. } => "webhook_event_conflict",
            WebhookError::Keys(_) | WebhookError::Internal(_) => "internal_error",
            WebhookError::Storage(_) => "storage_unavailable",
        }
    }
}
