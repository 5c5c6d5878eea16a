//! The parsed item key and the checks every backend applies to a request before touching its
//! store.

use std::time::Duration;

use crate::{ItemLockError, HOLDER_LEN_MAX, ITEMS_PER_CHECKOUT_MAX, TTL_MAX};

/// The longest item key, in characters.
pub const ITEM_KEY_LEN_MAX: usize = 128;

/// A unique item's key, as the caller names it (`listing:8812`, `sku-123.4`). Parsed, so that a
/// key is always 1 to 128 characters of `[A-Za-z0-9._:-]`: safe as a Redis key suffix, in a
/// URL path and in a log line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey(String);

impl ItemKey {
    /// Accepts 1 to [`ITEM_KEY_LEN_MAX`] characters of ASCII letters, digits, `.`, `_`, `:`
    /// and `-`; anything else is `item_key_invalid`.
    pub fn parse(value: &str) -> Result<ItemKey, ItemLockError> {
        if value.is_empty() || value.len() > ITEM_KEY_LEN_MAX {
            return Err(ItemLockError::Invalid(format!(
                "an item key has 1 to {ITEM_KEY_LEN_MAX} characters"
            )));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
        if !value.bytes().all(allowed) {
            return Err(ItemLockError::Invalid(
                "an item key consists of letters, digits, '.', '_', ':' and '-'".into(),
            ));
        }
        Ok(ItemKey(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The keys of an `acquire`, sorted and without duplicates, after checking the holder and the
/// lifetime; the same for every backend.
pub(crate) fn acquire_request<'a>(
    items: &'a [ItemKey],
    holder: &str,
    ttl: Duration,
) -> Result<Vec<&'a ItemKey>, ItemLockError> {
    check_holder(holder)?;
    check_ttl(ttl)?;
    sorted_unique(items)
}

/// The keys of a `release`, sorted and without duplicates, after checking the holder.
pub(crate) fn release_request<'a>(
    items: &'a [ItemKey],
    holder: &str,
) -> Result<Vec<&'a ItemKey>, ItemLockError> {
    check_holder(holder)?;
    sorted_unique(items)
}

/// A request's keys, sorted and without duplicates. Every backend takes its keys in this one
/// order, so two requests with overlapping keys cannot wait on each other in a cycle (row locks
/// on PostgreSQL), and a refusal names the same key on every backend.
fn sorted_unique(items: &[ItemKey]) -> Result<Vec<&ItemKey>, ItemLockError> {
    let mut keys: Vec<&ItemKey> = items.iter().collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() > ITEMS_PER_CHECKOUT_MAX {
        return Err(ItemLockError::Invalid(format!(
            "at most {ITEMS_PER_CHECKOUT_MAX} items can be locked at once"
        )));
    }
    Ok(keys)
}

/// Refuses a holder that could not be told apart from "nobody" or that is unbounded.
fn check_holder(holder: &str) -> Result<(), ItemLockError> {
    if holder.is_empty() || holder.len() > HOLDER_LEN_MAX {
        return Err(ItemLockError::Invalid(format!(
            "a lock holder has 1 to {HOLDER_LEN_MAX} bytes"
        )));
    }
    Ok(())
}

/// Refuses a lifetime of zero (a lock that is over before it is taken) or beyond [`TTL_MAX`].
fn check_ttl(ttl: Duration) -> Result<(), ItemLockError> {
    if ttl.is_zero() || ttl > TTL_MAX {
        return Err(ItemLockError::Invalid(format!(
            "a lock lives longer than 0 and at most {} s",
            TTL_MAX.as_secs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_and_plain() {
        for good in ["a", "listing:8812", "sku-123.4_x", &"k".repeat(128)] {
            assert_eq!(ItemKey::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            &"k".repeat(129),
            "a b",
            "a/b",
            "a*",
            "상품",
            "a\n",
            "{key}",
        ] {
            let error = ItemKey::parse(bad).unwrap_err();
            assert_eq!(error.code(), "item_key_invalid", "{bad:?}");
        }
    }

    #[test]
    fn a_request_is_sorted_deduplicated_and_bounded() {
        let keys: Vec<ItemKey> = ["b", "a", "b", "c"]
            .iter()
            .map(|k| ItemKey::parse(k).unwrap())
            .collect();
        let sorted: Vec<&str> = sorted_unique(&keys)
            .unwrap()
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(sorted, ["a", "b", "c"]);

        let many: Vec<ItemKey> = (0..=ITEMS_PER_CHECKOUT_MAX)
            .map(|i| ItemKey::parse(&format!("k{i}")).unwrap())
            .collect();
        assert!(sorted_unique(&many).is_err());
        assert!(sorted_unique(&many[..ITEMS_PER_CHECKOUT_MAX]).is_ok());
    }

    #[test]
    fn holders_and_lifetimes_are_bounded() {
        assert!(check_holder("chk_1").is_ok());
        assert!(check_holder("").is_err());
        assert!(check_holder(&"h".repeat(HOLDER_LEN_MAX + 1)).is_err());
        assert!(check_ttl(Duration::from_millis(1)).is_ok());
        assert!(check_ttl(TTL_MAX).is_ok());
        assert!(check_ttl(Duration::ZERO).is_err());
        assert!(check_ttl(TTL_MAX + Duration::from_secs(1)).is_err());
    }
}
