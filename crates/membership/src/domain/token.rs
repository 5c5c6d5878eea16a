//! Session tokens: `mps_` followed by 256 random bits in URL-safe base64 (43 characters).
//!
//! Only the SHA-256 digest of a token is stored, as for API keys. A token is random, not
//! chosen by a person, so a fast hash is as strong as a slow one against a leaked table, and a
//! lookup by digest compares no secret byte by byte, so timing reveals nothing.

use std::fmt;

use base64::Engine;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::MemberError;

/// The prefix of every session token, so that leaked tokens are easy to recognise and scan for,
/// and so that the API can tell a member's token from a server's API key (`mpk_`).
pub const SESSION_TOKEN_PREFIX: &str = "mps_";

/// How many random bytes a token carries.
const TOKEN_RANDOM_BYTES: usize = 32;
/// The length of the base64 part: 32 bytes without padding.
const TOKEN_ENCODED_LEN: usize = 43;

/// A session token. `Debug` and `Display` print `***`; [`SessionToken::expose`] gives the
/// text for the one response that hands it to the member.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A new token from the operating system's random number generator.
    pub fn generate() -> Result<SessionToken, MemberError> {
        let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|error| {
                MemberError::Internal(format!("no randomness for a token: {error}"))
            })?;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Ok(SessionToken(format!("{SESSION_TOKEN_PREFIX}{encoded}")))
    }

    /// Accepts only the exact shape [`SessionToken::generate`] produces; anything else cannot
    /// be a token and is not looked up.
    pub fn parse(text: &str) -> Option<SessionToken> {
        let encoded = text.strip_prefix(SESSION_TOKEN_PREFIX)?;
        let shaped = encoded.len() == TOKEN_ENCODED_LEN
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| SessionToken(text.to_owned()))
    }

    /// The hex SHA-256 digest under which the token is stored.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The token itself, to hand to the member once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape_and_parse_back() {
        let token = SessionToken::generate().expect("randomness");
        let text = token.expose();
        assert!(text.starts_with(SESSION_TOKEN_PREFIX));
        assert_eq!(text.len(), 47);
        assert_eq!(SessionToken::parse(text), Some(token.clone()));
        assert_ne!(SessionToken::generate().unwrap(), token);
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let token = SessionToken::generate().unwrap();
        let text = token.expose();
        for bad in [
            String::new(),
            "mps_".to_owned(),
            text[..46].to_owned(),
            format!("{text}A"),
            text.replacen("mps_", "mpk_", 1),
            format!("{}+{}", &text[..10], &text[11..]),
        ] {
            assert_eq!(SessionToken::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_never_print_and_are_stored_as_sha256() {
        let token = SessionToken::parse(&format!("mps_{}", "A".repeat(43))).unwrap();
        assert_eq!(format!("{token:?}"), "SessionToken(***)");
        assert_eq!(format!("{token}"), "***");
        assert_eq!(token.digest(), hex::encode(Sha256::digest(token.expose())));
        assert_eq!(token.digest().len(), 64);
    }
}
