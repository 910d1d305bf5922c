use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Parses an ISO-8601 timestamp with `Z` or a numeric offset (what every Segment SDK sends).
/// A bare date `YYYY-MM-DD` is accepted as midnight UTC, for imported files.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    // Some clients drop the `T` or the seconds' colon-separated offset; chrono's
    // `%+`-style parser is more lenient than RFC 3339.
    if let Ok(t) = DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(format!(
        "{raw:?} is not an ISO-8601 timestamp with a time zone (e.g. 2026-03-01T10:15:00Z)"
    ))
}

/// The canonical rendering used in stored and returned messages (millisecond precision).
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// [`format_timestamp`] of unix milliseconds; `None` outside chrono's range.
pub fn format_millis(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| format_timestamp(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_z_offsets_and_dates() {
        let z = parse_timestamp("2026-03-01T10:15:00.123Z").unwrap();
        let off = parse_timestamp("2026-03-01T11:15:00.123+01:00").unwrap();
        assert_eq!(z, off);
        assert_eq!(format_timestamp(&z), "2026-03-01T10:15:00.123Z");
        let python = parse_timestamp("2026-03-01T10:15:00.123456+00:00").unwrap();
        assert_eq!(python.timestamp_micros(), z.timestamp_micros() + 456);
        assert_eq!(
            format_timestamp(&parse_timestamp("1997-01-01").unwrap()),
            "1997-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn rejects_naive_and_garbage() {
        assert!(parse_timestamp("2026-03-01T10:15:00").is_err());
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
    }
}

/// Serde for timestamps as canonical millisecond ISO strings.
pub(crate) mod serde_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_timestamp(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_timestamp(&raw).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod serde_millis_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_timestamp(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        raw.map(|r| super::parse_timestamp(&r).map_err(serde::de::Error::custom))
            .transpose()
    }
}
