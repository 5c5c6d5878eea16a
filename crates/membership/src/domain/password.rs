//! Passwords: checked against the policy when chosen, bounded when presented, and never
//! printed.

use std::fmt;

use crate::MemberError;

/// The fewest characters a new password may have.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// The most characters a password may have. Hashing work grows with the input, so a bound
/// keeps one request from buying much CPU time.
pub const PASSWORD_CHARS_MAX: usize = 128;

/// A password in clear text, held only while it is hashed or verified. `Debug` and `Display`
/// print `***`, so that it cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A new password, checked against the policy: 10 to 128 characters, not all whitespace,
    /// no control characters. Any script is allowed; the text is compared byte for byte as
    /// UTF-8, so it must be typed the same way each time. Length is the policy, not character
    /// classes: long passphrases are both easier to remember and harder to guess.
    pub fn parse(raw: String) -> Result<Password, MemberError> {
        let chars = raw.chars().count();
        if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars) {
            return Err(MemberError::PasswordInvalid(
                "must be 10 to 128 characters long",
            ));
        }
        if raw.trim().is_empty() || raw.chars().any(char::is_control) {
            return Err(MemberError::PasswordInvalid(
                "must not be blank or contain control characters",
            ));
        }
        Ok(Password(raw))
    }

    /// A password presented for verification (at login, or as the current password). Only its
    /// length is bounded: whether it matches is for the hash to say, and a policy that changes
    /// later must not lock out members whose passwords met the old one. An empty or over-long
    /// password cannot match and is refused as wrong credentials.
    pub fn presented(raw: String) -> Result<Password, MemberError> {
        if raw.is_empty() || raw.chars().count() > PASSWORD_CHARS_MAX {
            return Err(MemberError::InvalidCredentials);
        }
        Ok(Password(raw))
    }

    /// The clear text, for the hasher only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_length_only() {
        assert!(Password::parse("correct horse".into()).is_ok());
        assert!(Password::parse("비밀번호는열글자이상".into()).is_ok());
        assert!(Password::parse("x".repeat(PASSWORD_CHARS_MIN)).is_ok());
        assert!(Password::parse("x".repeat(PASSWORD_CHARS_MAX)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(PASSWORD_CHARS_MIN - 1),
            "x".repeat(PASSWORD_CHARS_MAX + 1),
            " ".repeat(12),
            "tab\there-is-long".into(),
        ] {
            assert_eq!(Password::parse(bad).unwrap_err().code(), "password_invalid");
        }
    }

    #[test]
    fn presented_passwords_are_only_bounded() {
        assert!(Password::presented("short".into()).is_ok());
        assert_eq!(
            Password::presented(String::new()).unwrap_err().code(),
            "invalid_credentials"
        );
        assert_eq!(
            Password::presented("x".repeat(PASSWORD_CHARS_MAX + 1))
                .unwrap_err()
                .code(),
            "invalid_credentials"
        );
    }

    #[test]
    fn passwords_never_print() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
        assert_eq!(format!("{password}"), "***");
        assert_eq!(password.expose(), "correct horse battery");
    }
}
