//! Dates as the language reads and writes them: `YYYY-MM-DD` (midnight UTC) or RFC 3339,
//! held as milliseconds since the Unix epoch.

use chrono::{DateTime, NaiveDate, Timelike};

/// 0001-01-01T00:00:00Z: the canonical form has four-digit years.
pub(crate) const MIN_MS: i64 = -62_135_596_800_000;
/// 9999-12-31T23:59:59.999Z.
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// Reads `YYYY-MM-DD` or an RFC 3339 timestamp (any offset, converted to UTC; digits past
/// the millisecond are dropped). `None` for anything else or outside years 1 to 9999.
pub(crate) fn parse(text: &str) -> Option<i64> {
    let ms = if text.len() == 10 {
        let b = text.as_bytes();
        let shape = b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
        if !shape {
            return None;
        }
        let year = text.get(0..4)?.parse().ok()?;
        let month = text.get(5..7)?.parse().ok()?;
        let day = text.get(8..10)?.parse().ok()?;
        NaiveDate::from_ymd_opt(year, month, day)?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp_millis()
    } else {
        DateTime::parse_from_rfc3339(text).ok()?.timestamp_millis()
    };
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// The canonical spelling: `YYYY-MM-DD` at midnight UTC, otherwise
/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
pub(crate) fn format(ms: i64) -> String {
    let Some(t) = DateTime::from_timestamp_millis(ms) else {
        // Outside chrono's range: only a hand-built tree can get here.
        return ms.to_string();
    };
    let millis = t.timestamp_subsec_millis();
    if t.num_seconds_from_midnight() == 0 && millis == 0 {
        t.format("%Y-%m-%d").to_string()
    } else if millis == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{millis:03}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for text in [
            "2026-01-01",
            "0001-01-01",
            "9999-12-31T23:59:59.999Z",
            "1969-12-31T23:59:59.001Z",
            "2026-03-29T01:30:00Z",
        ] {
            let ms = parse(text).expect(text);
            assert_eq!(format(ms), text);
        }
        assert_eq!(parse("0001-01-01"), Some(MIN_MS));
        assert_eq!(parse("9999-12-31T23:59:59.999Z"), Some(MAX_MS));
    }

    #[test]
    fn offsets_become_utc_and_bad_dates_are_refused() {
        assert_eq!(
            parse("2026-01-01T10:00:00+01:00"),
            parse("2026-01-01T09:00:00Z")
        );
        assert_eq!(
            parse("2026-01-01T09:00:00.123456Z"),
            parse("2026-01-01T09:00:00.123Z")
        );
        for bad in [
            "2026-02-30",
            "2026-1-01",
            "2026-01-01T25:00:00Z",
            "0000-12-31",
            "2026-01-01T10:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
