//! Email addresses.
//!
//! Accepted: the common `local@domain` form of RFC 5321 restricted to ASCII, up to 254 bytes
//! (the longest address that fits SMTP's path limit), a local part of 1 to 64 characters of
//! letters, digits and ``!#$%&'*+/=?^_`{|}~.-`` without leading, trailing or doubled dots, and a
//! domain of at least two dot-separated labels of letters, digits and inner hyphens whose last
//! label is alphabetic. Quoted local parts, IP-literal domains, comments and non-ASCII
//! (internationalised) addresses are refused: real sign-ups almost never use them and each
//! would widen what every later consumer (mailers, back office search) must handle.
//!
//! The whole address is lower-cased, so `Kim@Example.com` and `kim@example.com` are one member.
//! (RFC 5321 lets a server treat local parts case-sensitively; no mainstream provider does.)
//! Surrounding whitespace is trimmed, because it comes from copy and paste, never on purpose.

use std::fmt;

use crate::MemberError;

/// The longest address, in bytes.
pub const EMAIL_LEN_MAX: usize = 254;
/// The longest local part (before the `@`), in bytes.
pub const EMAIL_LOCAL_LEN_MAX: usize = 64;
/// The longest domain label, in bytes.
const LABEL_LEN_MAX: usize = 63;

/// A normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    pub fn parse(raw: &str) -> Result<Email, MemberError> {
        let text = raw.trim();
        if text.is_empty() || text.len() > EMAIL_LEN_MAX {
            return Err(MemberError::EmailInvalid(
                "must be 1 to 254 characters long",
            ));
        }
        if !text.is_ascii() {
            return Err(MemberError::EmailInvalid(
                "must be ASCII (internationalised addresses are not supported)",
            ));
        }
        let lower = text.to_ascii_lowercase();
        let Some((local, domain)) = lower.split_once('@') else {
            return Err(MemberError::EmailInvalid("must contain an @"));
        };
        check_local(local)?;
        check_domain(domain)?;
        Ok(Email(lower))
    }

    /// The address as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps an address read back from the database, where it was parsed on the way in.
    pub(crate) fn from_db(value: String) -> Email {
        Email(value)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_local(local: &str) -> Result<(), MemberError> {
    if local.is_empty() || local.len() > EMAIL_LOCAL_LEN_MAX {
        return Err(MemberError::EmailInvalid(
            "must have 1 to 64 characters before the @",
        ));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let dots_ok = !local.starts_with('.') && !local.ends_with('.') && !local.contains("..");
    if !dots_ok || !local.chars().all(|c| atext(c) || c == '.') {
        return Err(MemberError::EmailInvalid(
            "has characters before the @ that are not allowed",
        ));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), MemberError> {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= LABEL_LEN_MAX
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let top_level_ok = labels
        .last()
        .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || !top_level_ok {
        return Err(MemberError::EmailInvalid(
            "must end in a domain name such as example.com",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Kim.Min-Su+pay@Mail.Example.CO.KR ").expect("valid");
        assert_eq!(email.as_str(), "kim.min-su+pay@mail.example.co.kr");
        assert_eq!(Email::parse("a@b.io").expect("valid").to_string(), "a@b.io");
        assert!(Email::parse("o'neil_{x}@example.com").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "kim",
            "kim@",
            "@example.com",
            "kim@@example.com",
            "kim@example",
            "kim@example.c",
            "kim@example.123",
            "kim@-example.com",
            "kim@example-.com",
            "kim@exa_mple.com",
            "kim@example..com",
            "kim@.example.com",
            ".kim@example.com",
            "kim.@example.com",
            "k..im@example.com",
            "k im@example.com",
            "\"kim\"@example.com",
            "kim@[127.0.0.1]",
            "김@example.com",
            "kim@例え.jp",
            "kim@exam\nple.com",
        ] {
            let error = Email::parse(bad).expect_err(bad);
            assert_eq!(error.code(), "email_invalid", "{bad:?}");
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let local = "l".repeat(EMAIL_LOCAL_LEN_MAX);
        assert!(Email::parse(&format!("{local}@example.com")).is_ok());
        assert!(Email::parse(&format!("{local}l@example.com")).is_err());
        let label = "d".repeat(LABEL_LEN_MAX);
        assert!(Email::parse(&format!("a@{label}.com")).is_ok());
        assert!(Email::parse(&format!("a@{label}d.com")).is_err());
        // "a@", three labels of 63, one of 56, "com" and four dots: 254 bytes, the most.
        let longest = format!("a@{label}.{label}.{label}.{}.com", "d".repeat(56));
        assert_eq!(longest.len(), EMAIL_LEN_MAX);
        assert!(Email::parse(&longest).is_ok());
        let longer = format!("a@{label}.{label}.{label}.{}.com", "d".repeat(57));
        assert!(Email::parse(&longer).is_err());
    }
}
