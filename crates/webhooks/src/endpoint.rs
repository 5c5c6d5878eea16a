//! Endpoints: where a merchant wants its events, which types, and the secret deliveries are
//! signed with.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ledger::Micros;
use rand::TryRngCore;

use crate::error::WebhookError;
use crate::event::EventType;
use crate::id::EndpointId;
use crate::store::EndpointRow;

/// The longest endpoint URL accepted.
pub const URL_LEN_MAX: usize = 2048;
/// The prefix of every endpoint secret, so that a leaked one is easy to recognise.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret: 256 bits, as long as the HMAC-SHA256 key it becomes.
const SECRET_RANDOM_BYTES: usize = 32;

/// Whether an endpoint receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    /// Events are delivered to it.
    Active,
    /// Deleted: no new deliveries, and its pending ones were cancelled.
    Deleted,
}

impl EndpointStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Active => "active",
            EndpointStatus::Deleted => "deleted",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<EndpointStatus, WebhookError> {
        match value {
            "active" => Ok(EndpointStatus::Active),
            "deleted" => Ok(EndpointStatus::Deleted),
            other => Err(WebhookError::Internal(format!(
                "unknown endpoint status {other:?}"
            ))),
        }
    }
}

/// A registered endpoint. Its secret is not part of it: it is shown once, at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub merchant_id: String,
    pub url: String,
    /// The types it receives; empty means every type, including types added later.
    pub event_types: Vec<EventType>,
    pub status: EndpointStatus,
    pub created_at: Micros,
    pub deleted_at: Option<Micros>,
}

impl Endpoint {
    /// The endpoint a stored row describes.
    pub(crate) fn from_row(row: EndpointRow) -> Result<Endpoint, WebhookError> {
        Ok(Endpoint {
            id: EndpointId::from_stored(row.id),
            merchant_id: row.merchant_id,
            url: row.url,
            event_types: event_types_from_json(&row.event_types)?,
            status: EndpointStatus::from_db(&row.status)?,
            created_at: row.created_at,
            deleted_at: row.deleted_at,
        })
    }

    /// Whether an event of this type is delivered to the endpoint.
    pub fn subscribes_to(&self, kind: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }
}

/// What registering an endpoint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// An absolute `http` or `https` URL without credentials or fragment.
    pub url: String,
    /// Event type names (`payment.succeeded`, …); empty means every type.
    pub event_types: Vec<String>,
}

/// A newly registered endpoint and its signing secret, which is never shown again.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    pub secret: EndpointSecret,
}

/// An endpoint's signing secret, `whsec_` + 256 random bits in URL-safe base64. The HMAC key
/// is this text itself. `Debug` prints `***`.
pub struct EndpointSecret(String);

impl EndpointSecret {
    /// A fresh secret from the operating system's random number generator.
    pub(crate) fn generate() -> Result<EndpointSecret, WebhookError> {
        let mut bytes = [0u8; SECRET_RANDOM_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| WebhookError::Keys(bank_accounts::KeyError::NoRandomness))?;
        Ok(EndpointSecret(format!(
            "{SECRET_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// A secret opened from storage.
    pub(crate) fn from_opened(text: String) -> EndpointSecret {
        EndpointSecret(text)
    }

    /// The secret itself, for the one response that shows it and for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(***)")
    }
}

/// Checks an endpoint URL and returns it in normal form: absolute, `http` or `https`, with a
/// host, without user or password (they would be stored and logged in the clear) and without
/// a fragment (never sent), at most 2048 bytes.
pub(crate) fn check_url(raw: &str) -> Result<String, WebhookError> {
    if raw.len() > URL_LEN_MAX {
        return Err(WebhookError::UrlInvalid("must be at most 2048 bytes"));
    }
    let url = url::Url::parse(raw).map_err(|_| WebhookError::UrlInvalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookError::UrlInvalid("must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::UrlInvalid("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookError::UrlInvalid("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(WebhookError::UrlInvalid("must not have a fragment"));
    }
    let normal = String::from(url);
    if normal.len() > URL_LEN_MAX {
        return Err(WebhookError::UrlInvalid("must be at most 2048 bytes"));
    }
    Ok(normal)
}

/// Parses subscribed type names into a sorted list without repeats.
pub(crate) fn parse_event_types(names: &[String]) -> Result<Vec<EventType>, WebhookError> {
    let mut kinds = Vec::with_capacity(names.len().min(EventType::ALL.len()));
    for name in names {
        let kind = EventType::parse(name)
            .ok_or_else(|| WebhookError::EventTypeUnknown(name.chars().take(64).collect()))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort();
    Ok(kinds)
}

/// The stored form of a subscription: a JSON array of type names.
pub(crate) fn event_types_json(kinds: &[EventType]) -> String {
    let names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
    serde_json::to_string(&names).expect("a list of strings serialises")
}

/// Reads a stored subscription.
pub(crate) fn event_types_from_json(text: &str) -> Result<Vec<EventType>, WebhookError> {
    let names: Vec<String> = serde_json::from_str(text)
        .map_err(|_| WebhookError::Internal("a stored subscription is not a JSON list".into()))?;
    parse_event_types(&names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_absolute_http_without_credentials_or_fragments() {
        assert_eq!(
            check_url("https://shop.example/hooks?x=1").unwrap(),
            "https://shop.example/hooks?x=1"
        );
        assert_eq!(
            check_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/"
        );
        for (bad, why) in [
            ("shop.example/hooks", "is not a URL"),
            ("ftp://shop.example/hooks", "must be http or https"),
            ("file:///etc/passwd", "must be http or https"),
            (
                "https://user:pw@shop.example/",
                "must not carry credentials",
            ),
            ("https://shop.example/#frag", "must not have a fragment"),
        ] {
            match check_url(bad) {
                Err(WebhookError::UrlInvalid(reason)) => assert_eq!(reason, why, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let long = format!("https://shop.example/{}", "a".repeat(URL_LEN_MAX));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn subscriptions_are_known_types_sorted_without_repeats() {
        let names = [
            "refund.succeeded".to_owned(),
            "payment.succeeded".to_owned(),
            "refund.succeeded".to_owned(),
        ];
        let kinds = parse_event_types(&names).unwrap();
        assert_eq!(
            kinds,
            vec![EventType::PaymentSucceeded, EventType::RefundSucceeded]
        );
        let json = event_types_json(&kinds);
        assert_eq!(json, r#"["payment.succeeded","refund.succeeded"]"#);
        assert_eq!(event_types_from_json(&json).unwrap(), kinds);
        assert!(matches!(
            parse_event_types(&["payment.refunded".to_owned()]),
            Err(WebhookError::EventTypeUnknown(_))
        ));
    }

    #[test]
    fn an_empty_subscription_means_every_type() {
        let endpoint = |event_types| Endpoint {
            id: EndpointId::generate(),
            merchant_id: "mer_a".into(),
            url: "https://shop.example/".into(),
            event_types,
            status: EndpointStatus::Active,
            created_at: 0,
            deleted_at: None,
        };
        assert!(endpoint(vec![]).subscribes_to(EventType::EscrowDisputed));
        let some = endpoint(vec![EventType::RefundFailed]);
        assert!(some.subscribes_to(EventType::RefundFailed));
        assert!(!some.subscribes_to(EventType::RefundSucceeded));
    }

    #[test]
    fn secrets_are_random_prefixed_and_never_printed() {
        let secret = EndpointSecret::generate().unwrap();
        assert!(secret.expose().starts_with(SECRET_PREFIX));
        assert_eq!(secret.expose().len(), SECRET_PREFIX.len() + 43);
        assert_eq!(format!("{secret:?}"), "EndpointSecret(***)");
        assert_ne!(
            EndpointSecret::generate().unwrap().expose(),
            secret.expose()
        );
    }
}
