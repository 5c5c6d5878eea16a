//! RFC 3339 timestamps on the wire, microseconds since the Unix epoch in storage.
//!
//! Responses always use UTC with exactly six fraction digits ("2026-11-22T03:33:34.123456Z"), so
//! that timestamps sort as strings and a client never has to guess the precision. Requests may
//! use any RFC 3339 offset; finer-than-microsecond input is truncated toward the past.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Microseconds since the Unix epoch, as the ledger stores them.
pub type Micros = i64;

/// 0001-01-01T00:00:00Z, the earliest instant RFC 3339's four-digit year can express.
pub const MICROS_MIN: Micros = -62_135_596_800_000_000;
/// 9999-12-31T23:59:59.999999Z, the latest instant RFC 3339's four-digit year can express.
pub const MICROS_MAX: Micros = 253_402_300_799_999_999;

/// The longest timestamp string that is even parsed, to bound work on hostile input.
const TIMESTAMP_LEN_MAX: usize = 64;

/// Why a timestamp string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 timestamp such as 2026-11-22T03:33:34.123456Z")]
pub struct TimestampInvalid;

/// Formats microseconds as RFC 3339 UTC with six fraction digits.
///
/// Values outside the four-digit-year range are clamped to it. The ledger only stores times
/// that came from its clock or from [`parse_rfc3339`], so clamping never happens in practice;
/// it exists so that formatting cannot fail.
pub fn format_micros(micros: Micros) -> String {
    let clamped = micros.clamp(MICROS_MIN, MICROS_MAX);
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(clamped) * 1000)
        .ok()
        .and_then(|instant| instant.format(format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
}

/// Parses an RFC 3339 timestamp with any offset into UTC microseconds.
pub fn parse_rfc3339(text: &str) -> Result<Micros, TimestampInvalid> {
    if text.len() > TIMESTAMP_LEN_MAX {
        return Err(TimestampInvalid);
    }
    let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampInvalid)?;
    let nanos = instant.to_offset(UtcOffset::UTC).unix_timestamp_nanos();
    let micros = Micros::try_from(nanos.div_euclid(1000)).map_err(|_| TimestampInvalid)?;
    if (MICROS_MIN..=MICROS_MAX).contains(&micros) {
        Ok(micros)
    } else {
        Err(TimestampInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_microseconds() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_micros(1_795_318_414_123_456),
            "2026-11-22T03:33:34.123456Z"
        );
        assert_eq!(format_micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(format_micros(i64::MAX), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_micros(i64::MIN), "0001-01-01T00:00:00.000000Z");
    }

    #[test]
    fn parsing_round_trips_and_honours_offsets() {
        for micros in [0, 1, -1, 1_795_318_414_123_456, MICROS_MIN, MICROS_MAX] {
            assert_eq!(parse_rfc3339(&format_micros(micros)), Ok(micros));
        }
        assert_eq!(
            parse_rfc3339("2026-11-22T12:33:34.123456+09:00"),
            Ok(1_795_318_414_123_456)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T03:33:34Z"),
            Ok(1_795_318_414_000_000)
        );
    }

    #[test]
    fn sub_microsecond_input_is_truncated_toward_the_past() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000001999Z"), Ok(1));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999999999Z"), Ok(-1));
    }

    #[test]
    fn rejects_what_is_not_rfc_3339() {
        for text in [
            "",
            "2026-11-22",
            "2026-11-22T03:33:34",
            "1795318414",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(text), Err(TimestampInvalid), "{text}");
        }
        assert_eq!(parse_rfc3339(&"9".repeat(100)), Err(TimestampInvalid));
    }
}
