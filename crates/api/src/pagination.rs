//! Cursor pagination with a bounded page size.
//!
//! Cursors are opaque to clients: the last item's sort key, echoed back as `after` (or
//! `cursor`). Offsets are not offered, because an offset page shifts when rows are inserted
//! and costs a scan of everything skipped.

use ledger::PAGE_SIZE_MAX;

use crate::error::ApiError;

/// The page size when a client does not ask for one.
pub const PAGE_SIZE_DEFAULT: i64 = 100;

/// Checks a requested page size: absent means [`PAGE_SIZE_DEFAULT`], and anything outside
/// `1..=PAGE_SIZE_MAX` is refused rather than silently clamped, so a client never mistakes a
/// short page for the end of the list.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(PAGE_SIZE_DEFAULT);
    if (1..=PAGE_SIZE_MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {PAGE_SIZE_MAX}"
        )))
    }
}

/// Keeps at most `limit` items of a page fetched with one extra row, and returns the cursor of
/// the next page when that extra row showed there is one.
pub fn trim_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(page_limit(None).ok(), Some(PAGE_SIZE_DEFAULT));
        assert_eq!(page_limit(Some(1)).ok(), Some(1));
        assert_eq!(page_limit(Some(PAGE_SIZE_MAX)).ok(), Some(PAGE_SIZE_MAX));
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(PAGE_SIZE_MAX + 1)).is_err());
        assert!(page_limit(Some(-1)).is_err());
    }

    #[test]
    fn trimming_yields_the_next_cursor_only_when_more_exist() {
        let mut items = vec![1, 2, 3];
        assert_eq!(
            trim_page(&mut items, 2, |i| i.to_string()),
            Some("2".into())
        );
        assert_eq!(items, vec![1, 2]);
        let mut items = vec![1, 2];
        assert_eq!(trim_page(&mut items, 2, |i| i.to_string()), None);
    }
}
