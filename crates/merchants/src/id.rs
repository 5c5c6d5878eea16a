//! The merchant id: `mer_` and a ULID, so that ids sort by onboarding time and can never be
//! mistaken for another resource's.

ids::ulid_id!(
    /// A merchant's id, `mer_` + a canonical (upper-case) ULID.
    MerchantId,
    "mer_"
);

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
