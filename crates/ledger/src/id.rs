//! Typed identifiers. Client-chosen ids double as idempotency keys, so their alphabet is
//! restricted to characters that are safe in URLs, logs and CSV files.

use crate::LedgerError;

/// The longest id the ledger accepts.
pub const ID_LEN_MAX: usize = 128;

/// Checks that `value` is 1..=128 characters of `[A-Za-z0-9_.:-]`.
pub(crate) fn check_id(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() || value.len() > ID_LEN_MAX {
        return Err(LedgerError::InvalidField {
            field,
            reason: "must be 1 to 128 characters",
        });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
    if !value.chars().all(allowed) {
        return Err(LedgerError::InvalidField {
            field,
            reason: "may only contain letters, digits, '_', '.', ':' and '-'",
        });
    }
    Ok(())
}

/// Declares a string id newtype with a validating constructor and a generator that prefixes
/// a ULID, which sorts by creation time.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn parse(value: &str) -> Result<Self, LedgerError> {
                $crate::id::check_id($field, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a value read back from the database, where it was validated on the way in.
            pub(crate) fn from_db(value: String) -> Self {
                Self(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A ledger account id (`acc_…`).
    AccountId,
    "account_id",
    "acc_"
);
string_id!(
    /// A journal transaction id: chosen by the client as its idempotency key, or `ltx_…`.
    TransactionId,
    "transaction_id",
    "ltx_"
);
string_id!(
    /// A hold id: chosen by the client as its idempotency key, or `hld_…`.
    HoldId,
    "hold_id",
    "hld_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_restricted_to_a_safe_alphabet() {
        assert!(TransactionId::parse("order-17:capture").is_ok());
        assert!(TransactionId::parse("").is_err());
        assert!(TransactionId::parse("a b").is_err());
        assert!(TransactionId::parse("é").is_err());
        assert!(TransactionId::parse(&"x".repeat(129)).is_err());
        assert!(AccountId::generate().as_str().starts_with("acc_"));
    }
}
