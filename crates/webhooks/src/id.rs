//! Typed ids, each a type prefix and a ULID, so that ids sort by creation time and an event's
//! id can never be mistaken for a delivery's; and the check of the merchant ids this crate is
//! given.

use crate::error::WebhookError;

/// The prefix of a merchant's id.
pub const MERCHANT_ID_PREFIX: &str = "mer_";
/// The longest merchant id accepted.
pub const MERCHANT_ID_LEN_MAX: usize = 64;

/// Checks the form of a merchant id: `mer_` and 1 to 60 ASCII letters or digits. Merchants are
/// another crate's; this one only refuses ids that could name none, and stores the rest as
/// given.
pub fn check_merchant_id(id: &str) -> Result<(), WebhookError> {
    let valid = id.len() <= MERCHANT_ID_LEN_MAX
        && id.strip_prefix(MERCHANT_ID_PREFIX).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if valid {
        Ok(())
    } else {
        Err(WebhookError::MerchantIdInvalid(
            id.chars().take(MERCHANT_ID_LEN_MAX).collect(),
        ))
    }
}

ids::ulid_id!(
    /// An event's id, `evt_` + ULID: the key receivers deduplicate deliveries on.
    EventId,
    "evt_"
);
ids::ulid_id!(
    /// A webhook endpoint's id, `we_` + ULID.
    EndpointId,
    "we_"
);
ids::ulid_id!(
    /// A delivery's id (one event to one endpoint), `whd_` + ULID.
    DeliveryId,
    "whd_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_ids_need_the_prefix_and_plain_characters() {
        for good in ["mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B", "mer_a", "mer_shop42"] {
            assert!(check_merchant_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "mer_",
            "mer_a-b",
            "mer_a b",
            "usr_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B",
            "MER_abc",
            &format!("mer_{}", "a".repeat(61)),
        ] {
            assert!(
                matches!(
                    check_merchant_id(bad),
                    Err(WebhookError::MerchantIdInvalid(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_ids_parse_back_and_only_canonical_ones_parse() {
        let id = EventId::generate();
        assert!(id.as_str().starts_with("evt_"));
        assert_eq!(EventId::parse(id.as_str()), Some(id.clone()));
        let ulid = &id.as_str()[4..];
        for bad in [
            String::new(),
            ulid.to_owned(),
            format!("evt_{}", ulid.to_lowercase()),
            format!("whd_{ulid}"),
            format!("evt_{ulid}0"),
        ] {
            assert_eq!(EventId::parse(&bad), None, "{bad:?}");
        }
        assert!(EndpointId::generate().as_str().starts_with("we_"));
        assert!(DeliveryId::generate().as_str().starts_with("whd_"));
    }
}
