//! Typed ids: a type prefix and a ULID (`usr_…`, `pay_…`, `mtx_…`), so that ids sort by
//! creation time and one kind can never be mistaken for another in code or in a log line.
//! [`ulid_id!`] declares such an id; every crate that mints ids uses it.

#![forbid(unsafe_code)]

/// The ULID crate, for the expansions of [`ulid_id!`] in crates that do not depend on it.
pub use ulid;

use std::sync::Mutex;

/// One generator for the process, so that ids minted in the same millisecond still sort in the
/// order they were made: listings ordered by id ("oldest first") keep their promise.
static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());

/// A ULID greater than every other this process minted (a random one should the 80 random
/// bits of one millisecond ever run out).
pub fn next_ulid() -> ulid::Ulid {
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// Declares an id newtype whose only valid form is `prefix` + a canonical (upper-case) ULID:
/// `generate`, `parse` (canonical form only), `as_str`, `Display`, and `from_stored` for
/// values read back from a row the crate wrote.
#[macro_export]
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The type prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new id for the current instant.
            pub fn generate() -> $name {
                $name(format!("{}{}", $prefix, $crate::next_ulid()))
            }

            /// Accepts only the canonical form: the prefix and 26 upper-case Crockford base32
            /// characters. Anything else cannot name a stored row, so it is refused early.
            pub fn parse(value: &str) -> Option<$name> {
                let ulid = value.strip_prefix($prefix)?;
                let canonical = $crate::ulid::Ulid::from_string(ulid).ok()?.to_string();
                (canonical == ulid).then(|| $name(value.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An id read back from a row this crate wrote (with `generate`), not checked again.
            #[allow(dead_code)] // Not every kind of id is read back from storage.
            pub(crate) fn from_stored(value: String) -> $name {
                $name(value)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    ulid_id!(
        /// A test id.
        TestId,
        "tst_"
    );

    #[test]
    fn generated_ids_parse_back_and_only_canonical_ones_parse() {
        let id = TestId::generate();
        assert!(id.as_str().starts_with(TestId::PREFIX));
        assert_eq!(TestId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.to_string(), id.as_str());
        let lower = format!("tst_{}", id.as_str()[4..].to_lowercase());
        assert_eq!(TestId::parse(&lower), None);
        assert_eq!(TestId::parse("tst_nope"), None);
        assert_eq!(TestId::parse(&id.as_str().replace("tst_", "usr_")), None);
        assert_eq!(TestId::from_stored(id.to_string()), id);
    }

    #[test]
    fn ids_sort_in_the_order_they_were_made_even_within_a_millisecond() {
        let ids: Vec<TestId> = (0..1_000).map(|_| TestId::generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
