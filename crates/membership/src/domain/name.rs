//! A member's display name: what the member wants to be called, in any script.

use std::fmt;

use crate::MemberError;

/// The most characters (Unicode scalar values) a name may have.
pub const NAME_CHARS_MAX: usize = 64;

/// A trimmed, non-empty name of at most [`NAME_CHARS_MAX`] characters without control
/// characters (which would garble receipts, statements and the back office).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberName(String);

impl MemberName {
    /// Parses a name; surrounding whitespace is trimmed.
    pub fn parse(raw: &str) -> Result<MemberName, MemberError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS_MAX {
            return Err(MemberError::NameInvalid("must be 1 to 64 characters long"));
        }
        if name.chars().any(char::is_control) {
            return Err(MemberError::NameInvalid(
                "must not contain control characters",
            ));
        }
        Ok(MemberName(name.to_owned()))
    }

    /// The name as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a name read back from the database, where it was parsed on the way in.
    pub(crate) fn from_db(value: String) -> MemberName {
        MemberName(value)
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_may_use_any_script() {
        assert_eq!(MemberName::parse("  김민수 ").unwrap().as_str(), "김민수");
        assert_eq!(
            MemberName::parse("Ada Lovelace").unwrap().to_string(),
            "Ada Lovelace"
        );
        let longest = "가".repeat(NAME_CHARS_MAX);
        assert_eq!(MemberName::parse(&longest).unwrap().as_str(), longest);
    }

    #[test]
    fn empty_long_and_control_names_are_refused() {
        for bad in [
            String::new(),
            "   ".to_owned(),
            "가".repeat(NAME_CHARS_MAX + 1),
            "Ada\nLovelace".to_owned(),
            "Ada\u{7}".to_owned(),
        ] {
            assert_eq!(MemberName::parse(&bad).unwrap_err().code(), "name_invalid");
        }
    }
}
