//! The signature every delivery carries, and its verification (for receivers and tests).
//!
//! `Mypay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, where the MAC is keyed by the
//! endpoint's secret (the `whsec_…` text itself, as shown at registration) over
//! `"{t}.{body}"`: the timestamp, a full stop, and the raw request body. Signing the timestamp
//! with the body lets a receiver refuse an old message replayed by whoever captured it, which a
//! signature over the body alone could not tell from a fresh one. A header may carry several
//! `v1` values (one per secret while a secret is rotated); one match is enough, and unknown
//! keys are ignored so that a later scheme can be added beside `v1`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Mypay-Signature";
/// The header that carries the event's id (`evt_…`), the key receivers deduplicate on.
pub const EVENT_ID_HEADER: &str = "Mypay-Event-Id";
/// The header that carries the event's type (`payment.succeeded`, …).
pub const EVENT_TYPE_HEADER: &str = "Mypay-Event-Type";
/// How far a receiver should let a signature's timestamp be from its own clock: five minutes,
/// ample for clock skew and a slow network, short enough that a replay must be quick.
pub const SIGNATURE_TOLERANCE_S: i64 = 5 * 60;
/// The longest header [`verify`] reads; a real one is under 100 bytes.
const HEADER_LEN_MAX: usize = 1024;
/// The most `v1` values [`verify`] tries.
const SIGNATURES_MAX: usize = 8;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. Only [`SignatureError::Mismatch`] and
/// [`SignatureError::Malformed`] can mean a forgery; a stale or future timestamp on a matching
/// signature is an authentic message at the wrong time, a replay or a wrong clock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<digits>,v1=<hex>[,v1=<hex>…]`.
    #[error("the signature header is malformed")]
    Malformed,
    /// No `v1` value is the MAC of this timestamp and body under this secret.
    #[error("the signature does not match")]
    Mismatch,
    /// The signature matches, but it was made longer ago than the tolerance: a replay.
    #[error("the signature is {age_s} s old, more than the tolerance")]
    Stale {
        /// How old the timestamp is.
        age_s: i64,
    },
    /// The signature matches, but its timestamp is further ahead than the tolerance.
    #[error("the signature's timestamp is {ahead_s} s in the future, more than the tolerance")]
    Future {
        /// How far ahead the timestamp is.
        ahead_s: i64,
    },
}

/// The `Mypay-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = mac_of(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(mac))
}

/// Checks a `Mypay-Signature` value against the raw body, in constant time, and refuses a
/// timestamp more than `tolerance_s` away from `now_s` in either direction. The signature is
/// checked first, so that [`SignatureError::Stale`] means "authentic but old".
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let (timestamp, signatures) = parse_header(header)?;
    let matched = signatures.iter().any(|signature| {
        mac_of(secret, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let age_s = now_s.saturating_sub(timestamp);
    if age_s > tolerance_s {
        return Err(SignatureError::Stale { age_s });
    }
    if age_s < -tolerance_s {
        return Err(SignatureError::Future {
            ahead_s: age_s.saturating_neg(),
        });
    }
    Ok(())
}

fn mac_of(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The timestamp and the decoded `v1` signatures of a header: exactly one `t`, at least one
/// `v1`; other keys are skipped.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
    if header.len() > HEADER_LEN_MAX {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" if timestamp.is_none() => timestamp = Some(parse_timestamp(value)?),
            "t" => return Err(SignatureError::Malformed),
            "v1" if signatures.len() < SIGNATURES_MAX => {
                signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?);
            }
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !signatures.is_empty() => Ok((timestamp, signatures)),
        _ => Err(SignatureError::Malformed),
    }
}

/// Unix seconds as plain ASCII digits (no sign, no spaces), as [`sign`] writes them.
fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    value.parse().map_err(|_| SignatureError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;
    const NOW: i64 = 1_795_305_600;

    #[test]
    fn a_fresh_signature_verifies() {
        let header = sign(SECRET, NOW, BODY);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(header.len(), "t=1795305600,v1=".len() + 64);
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, NOW + 300, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, NOW - 300, 300), Ok(()));
    }

    #[test]
    fn the_mac_is_over_the_timestamp_a_full_stop_and_the_body() {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{NOW}.").as_bytes());
        mac.update(BODY);
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(sign(SECRET, NOW, BODY), format!("t={NOW},v1={expected}"));
    }

    #[test]
    fn a_tampered_body_or_timestamp_does_not_verify() {
        let header = sign(SECRET, NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"payment.failed"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify(SECRET, &moved, BODY, NOW, 300),
            Err(SignatureError::Mismatch),
            "a replay cannot refresh the timestamp without the secret"
        );
    }

    #[test]
    fn another_secret_does_not_verify() {
        let header = sign(b"whsec_another", NOW, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_timestamp_is_a_replay() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW + 301, 300),
            Err(SignatureError::Stale { age_s: 301 })
        );
        assert_eq!(
            verify(SECRET, &header, BODY, NOW + 86_400, SIGNATURE_TOLERANCE_S),
            Err(SignatureError::Stale { age_s: 86_400 })
        );
    }

    #[test]
    fn a_timestamp_beyond_the_tolerance_in_the_future_is_refused() {
        let header = sign(SECRET, NOW + 301, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(SignatureError::Future { ahead_s: 301 })
        );
    }

    #[test]
    fn a_forged_stale_message_is_a_mismatch_not_a_replay() {
        let header = sign(b"whsec_another", NOW, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW + 10_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_listed_v1_may_match_and_unknown_keys_are_skipped() {
        let good = sign(SECRET, NOW, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        let other = sign(b"whsec_old", NOW, BODY);
        let other_v1 = other.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW}, v1={other_v1}, v0=abc, v1={v1}");
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(SECRET, NOW, BODY);
        let v1 = good.split_once(",v1=").unwrap().1.to_owned();
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={v1}"),
            format!("t={NOW}"),
            format!("t=,v1={v1}"),
            format!("t=-5,v1={v1}"),
            format!("t=+{NOW},v1={v1}"),
            format!("t=12ab,v1={v1}"),
            format!("t={NOW},t={NOW},v1={v1}"),
            format!("t={NOW},v1=not-hex"),
            format!("t={NOW},v1={v1},junk"),
            format!("t=99999999999999999999,v1={v1}"),
            format!("t={NOW},v1={v1},x={}", "a".repeat(2000)),
        ] {
            assert_eq!(
                verify(SECRET, &header, BODY, NOW, 300),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }
}
