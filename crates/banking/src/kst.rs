//! Korean Standard Time, the calendar banks keep: a bank day (the day a request id must be unique
//! in, the day a statement covers) is a date in KST. Korea has no daylight saving time, so a
//! fixed UTC+9 offset is exact.
//!
//! The open-banking API writes times as digit strings in KST: `yyyyMMdd` for dates,
//! `yyyyMMddHHmmss` for request times (`tran_dtime`) and `yyyyMMddHHmmssSSS` for reply times
//! (`api_tran_dtm`).

use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// UTC+9.
pub const KST: UtcOffset = offset!(+9);

const DATE: &[FormatItem<'static>] = format_description!("[year][month][day]");
const TIME: &[FormatItem<'static>] = format_description!("[hour][minute][second]");
const DTIME: &[FormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]");
const DTM: &[FormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second][subsecond digits:3]");

/// The bank day an instant falls on.
pub fn bank_date(at: OffsetDateTime) -> Date {
    at.to_offset(KST).date()
}

/// `yyyyMMdd`.
pub fn format_date(date: Date) -> String {
    date.format(DATE).expect("a date formats as yyyyMMdd")
}

/// Parses `yyyyMMdd`.
pub fn parse_date(value: &str) -> Option<Date> {
    (value.len() == 8)
        .then(|| Date::parse(value, DATE).ok())
        .flatten()
}

/// `HHmmss` of an instant in KST.
pub fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(KST)
        .time()
        .format(TIME)
        .expect("a time formats as HHmmss")
}

/// `yyyyMMddHHmmss` in KST, the form of a request's `tran_dtime`.
pub fn format_dtime(at: OffsetDateTime) -> String {
    at.to_offset(KST)
        .format(DTIME)
        .expect("a time formats as yyyyMMddHHmmss")
}

/// Parses `yyyyMMddHHmmss` in KST.
pub fn parse_dtime(value: &str) -> Option<OffsetDateTime> {
    if value.len() != 14 {
        return None;
    }
    PrimitiveDateTime::parse(value, DTIME)
        .ok()
        .map(|t| t.assume_offset(KST))
}

/// `yyyyMMddHHmmssSSS` in KST, the form of `api_tran_dtm`.
pub fn format_dtm(at: OffsetDateTime) -> String {
    at.to_offset(KST)
        .format(DTM)
        .expect("a time formats as yyyyMMddHHmmssSSS")
}

/// Parses `yyyyMMddHHmmssSSS` in KST.
pub fn parse_dtm(value: &str) -> Option<OffsetDateTime> {
    if value.len() != 17 {
        return None;
    }
    PrimitiveDateTime::parse(value, DTM)
        .ok()
        .map(|t| t.assume_offset(KST))
}

/// Microseconds since the Unix epoch, the form the sandbox stores times in.
pub(crate) fn to_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).expect("a bank time fits in i64 microseconds")
}

/// The instant `micros` microseconds after the Unix epoch, in KST.
pub(crate) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .expect("stored times are in range")
        .to_offset(KST)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn the_bank_day_is_the_kst_date() {
        // 15:00 UTC is midnight in Seoul: the bank day has already turned.
        assert_eq!(
            bank_date(datetime!(2026-03-01 14:59:59 UTC)),
            date!(2026 - 03 - 01)
        );
        assert_eq!(
            bank_date(datetime!(2026-03-01 15:00:00 UTC)),
            date!(2026 - 03 - 02)
        );
    }

    #[test]
    fn formats_round_trip() {
        let at = datetime!(2026-03-01 15:04:05.678 UTC);
        assert_eq!(format_date(bank_date(at)), "20260302");
        assert_eq!(format_time(at), "000405");
        assert_eq!(format_dtime(at), "20260302000405");
        assert_eq!(format_dtm(at), "20260302000405678");
        assert_eq!(parse_dtm("20260302000405678"), Some(at));
        assert_eq!(
            parse_dtime("20260302000405"),
            Some(datetime!(2026-03-01 15:04:05 UTC))
        );
        assert_eq!(parse_date("20260302"), Some(date!(2026 - 03 - 02)));
        assert_eq!(parse_date("2026032"), None);
        assert_eq!(parse_dtime("2026030200040"), None);
        assert_eq!(parse_dtm("20261302000405678"), None);
        assert_eq!(from_micros(to_micros(at)), at);
    }
}
