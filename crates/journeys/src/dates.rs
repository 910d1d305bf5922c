//! Date triggers: when a date in a person's trait comes round (a renewal, a birthday), in
//! their time zone. Pure: the runner asks, for each person, whether an occurrence fell
//! between two instants.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use crate::definition::DateTrigger;

/// The time of day a date trigger starts at when it names none.
pub const DEFAULT_AT_MINUTE: u32 = 9 * 60;

/// A date in a trait: `"1990-05-17"`, or a timestamp whose date part is read
/// (`"2027-01-31T10:00:00Z"`).
pub fn trait_date(value: &Value) -> Option<NaiveDate> {
    let text = value.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// `date` in `year`; 29 February is the 28th in a year without it.
fn in_year(date: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), date.day().saturating_sub(1)))
}

/// The instant of `minute` of `day` in `zone` (the earlier of two when clocks go back, the
/// first minute after the gap when they go forward).
fn local_instant(zone: Tz, day: NaiveDate, minute: u32) -> Option<i64> {
    let mut local = day.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minute));
    for _ in 0..=180 {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) => return Some(t.timestamp_millis()),
            LocalResult::Ambiguous(earlier, _) => return Some(earlier.timestamp_millis()),
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    None
}

/// The occurrence of `trigger` for a person whose trait holds `value`, in `zone`, that
/// falls in `(after, until]`: its day (the trigger's, `days_before` / `days_after` the
/// trait's date) and the instant it starts at (`at_minute` local time).
pub fn occurrence_between(
    trigger: &DateTrigger,
    at_minute: u32,
    value: &Value,
    zone: Tz,
    after: i64,
    until: i64,
) -> Option<(NaiveDate, i64)> {
    let date = trait_date(value)?;
    let shift = Duration::days(i64::from(trigger.days_after) - i64::from(trigger.days_before));
    let candidates: Vec<NaiveDate> = if trigger.yearly {
        let year_of = |ms: i64| zone.timestamp_millis_opt(ms).single().map(|t| t.year());
        let (first, last) = (year_of(after)?, year_of(until)?);
        // A shift can carry an anniversary into the year before or after.
        (first - 1..=last + 1)
            .filter_map(|year| in_year(date, year))
            .collect()
    } else {
        vec![date]
    };
    candidates.into_iter().find_map(|day| {
        let day = day.checked_add_signed(shift)?;
        let at = local_instant(zone, day, at_minute)?;
        (after < at && at <= until).then_some((day, at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trigger(yearly: bool, before: u32, after: u32) -> DateTrigger {
        DateTrigger {
            trait_name: "d".into(),
            days_before: before,
            days_after: after,
            yearly,
            at: None,
        }
    }

    fn rome(y: i32, m: u32, d: u32, h: u32) -> i64 {
        chrono_tz::Europe::Rome
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn a_birthday_comes_round_every_year_at_nine_local_time() {
        let zone = chrono_tz::Europe::Rome;
        let birthday = json!("1990-03-29");
        let t = trigger(true, 0, 0);
        // 29 March 2026 is the day the clocks go forward: 09:00 CEST.
        let found = occurrence_between(
            &t,
            DEFAULT_AT_MINUTE,
            &birthday,
            zone,
            rome(2026, 3, 29, 8),
            rome(2026, 3, 29, 10),
        );
        assert_eq!(
            found,
            Some((
                NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
                rome(2026, 3, 29, 9)
            ))
        );
        assert_eq!(
            occurrence_between(
                &t,
                DEFAULT_AT_MINUTE,
                &birthday,
                zone,
                rome(2026, 3, 29, 9),
                rome(2026, 3, 30, 9)
            ),
            None,
            "once"
        );
        assert!(
            occurrence_between(
                &t,
                DEFAULT_AT_MINUTE,
                &birthday,
                zone,
                rome(2027, 3, 29, 8),
                rome(2027, 3, 29, 10)
            )
            .is_some(),
            "next year"
        );
    }

    #[test]
    fn relative_dates_leap_days_and_bad_values() {
        let zone = chrono_tz::Europe::Rome;
        let renewal = json!("2027-01-31T10:00:00Z");
        let three_before = trigger(false, 3, 0);
        assert_eq!(
            occurrence_between(
                &three_before,
                10 * 60,
                &renewal,
                zone,
                rome(2027, 1, 28, 0),
                rome(2027, 1, 29, 0)
            )
            .map(|(d, _)| d),
            NaiveDate::from_ymd_opt(2027, 1, 28)
        );
        let leap = json!("2000-02-29");
        assert_eq!(
            occurrence_between(
                &trigger(true, 0, 0),
                DEFAULT_AT_MINUTE,
                &leap,
                zone,
                rome(2027, 2, 28, 0),
                rome(2027, 2, 28, 23)
            )
            .map(|(d, _)| d),
            NaiveDate::from_ymd_opt(2027, 2, 28),
            "29 February is the 28th in 2027"
        );
        // Seven days after 28 December falls in the next year.
        assert!(
            occurrence_between(
                &trigger(true, 0, 7),
                DEFAULT_AT_MINUTE,
                &json!("1980-12-28"),
                zone,
                rome(2027, 1, 4, 0),
                rome(2027, 1, 4, 23)
            )
            .is_some()
        );
        for bad in [json!(19900517), json!("17/05/1990"), json!(null), json!("")] {
            assert_eq!(
                occurrence_between(&trigger(true, 0, 0), 0, &bad, zone, 0, i64::MAX / 2),
                None,
                "{bad}"
            );
        }
    }
}
