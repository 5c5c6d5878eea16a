//! The merchant id: `mer_` and a ULID, so that ids sort by onboarding time and can never be
//! mistaken for another resource's.

use std::fmt;

use ulid::Ulid;

/// A merchant's id, `mer_` + a canonical (upper-case) ULID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantId(String);

impl MerchantId {
    /// The type prefix every merchant id starts with.
    pub const PREFIX: &'static str = "mer_";

    /// A new id for the current instant.
    pub fn generate() -> MerchantId {
        MerchantId(format!("{}{}", Self::PREFIX, Ulid::new()))
    }

    /// Accepts only the canonical form: the prefix and 26 upper-case Crockford base32
    /// characters. Anything else cannot name a stored merchant, so it is refused early.
    pub fn parse(value: &str) -> Option<MerchantId> {
        let ulid = value.strip_prefix(Self::PREFIX)?;
        let canonical = Ulid::from_string(ulid).ok()?.to_string();
        (canonical == ulid).then(|| MerchantId(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_only_canonical_ones_parse() {
        let id = MerchantId::generate();
        assert!(id.as_str().starts_with("mer_"));
        assert_eq!(MerchantId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.to_string(), id.as_str());
        let ulid = &id.as_str()[4..];
        for bad in [
            String::new(),
            "mer_".to_owned(),
            ulid.to_owned(),
            format!("mer_{}", ulid.to_lowercase()),
            format!("usr_{ulid}"),
            format!("mer_{ulid}0"),
            format!(" mer_{ulid}"),
        ] {
            assert_eq!(MerchantId::parse(&bad), None, "{bad:?}");
        }
    }
}
