//! Local time windows ("weekdays 09:00–20:00 in the customer's zone") and the next instant
//! inside one: a journey's delay window, and the hours messages may go out (quiet hours
//! are the rest of the day). Days are the customer's calendar days, so a window keeps its
//! local hours across daylight-saving changes.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A person's time zone: their `timezone` trait (`Europe/Rome`, `America/New_York`) when
/// it names one, else that of their `country` trait (`IT`) or of their `phone` number's
/// country (`+39…`) when that country has one zone, else `default` (the workspace's
/// `[time] zone`). Quiet hours, journeys' windows and date triggers all read it here.
pub fn person_zone(traits: &serde_json::Map<String, serde_json::Value>, default: Tz) -> Tz {
    let text = |key: &str| traits.get(key).and_then(serde_json::Value::as_str);
    text("timezone")
        .and_then(|name| name.trim().parse().ok())
        .or_else(|| text("country").and_then(crate::country::zone_of_country))
        .or_else(|| {
            let phone = crate::sms::normalize_phone(text("phone")?, None).ok()?;
            crate::country::zone_of_country(crate::country::country_of_phone(&phone)?.as_ref())
        })
        .unwrap_or(default)
}

/// A window: allowed weekdays (Monday first) and minutes of the day
/// `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalWindow {
    pub days: [bool; 7],
    pub from_minute: u32,
    pub to_minute: u32,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `"09:00"` → 540; `"24:00"` (the end of the day) → 1440.
pub fn minute_of_day(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    match (hours, minutes) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(hours * 60 + minutes),
        _ => None,
    }
}

impl LocalWindow {
    /// Reads a window on `days` (`mon` … `sun`; every day when empty) from `from` to `to`
    /// (`"09:00"`); the error names the field (`days`, `from`, `to`) and says why.
    pub fn parse(
        days_named: &[String],
        from: &str,
        to: &str,
    ) -> Result<LocalWindow, (&'static str, String)> {
        let mut days = [days_named.is_empty(); 7];
        for day in days_named {
            let i = DAY_NAMES
                .iter()
                .position(|name| name.eq_ignore_ascii_case(day))
                .ok_or_else(|| {
                    (
                        "days",
                        format!("{day:?} is not a day: use mon, tue, wed, thu, fri, sat, sun"),
                    )
                })?;
            days[i] = true;
        }
        let time = |field: &'static str, text: &str| {
            minute_of_day(text).ok_or_else(|| {
                (
                    field,
                    format!("{text:?} is not a time of day like \"09:00\""),
                )
            })
        };
        let (from_minute, to_minute) = (time("from", from)?, time("to", to)?);
        if from_minute >= to_minute {
            return Err((
                "to",
                format!("the window must end after it starts ({from} to {to})"),
            ));
        }
        Ok(LocalWindow {
            days,
            from_minute,
            to_minute,
        })
    }
}

/// The first instant at or after `at_ms` inside `window` in `zone`: `at_ms` itself when it
/// is inside, else the start of the next allowed day's window. A start that falls in a
/// daylight-saving gap moves to the first minute that exists.
pub fn next_allowed(at_ms: i64, zone: Tz, window: &LocalWindow) -> i64 {
    let Some(at) = Utc.timestamp_millis_opt(at_ms).single() else {
        return at_ms;
    };
    let local = at.with_timezone(&zone);
    let today = local.date_naive();
    let minute_now = local.time().num_seconds_from_midnight() / 60;
    for offset in 0..8 {
        let day = today + Duration::days(offset);
        if !window.days[day.weekday().num_days_from_monday() as usize] {
            continue;
        }
        if offset == 0 {
            if (window.from_minute..window.to_minute).contains(&minute_now) {
                return at_ms;
            }
            if minute_now >= window.to_minute {
                continue;
            }
        }
        if let Some(start) = instant(zone, day, window.from_minute) {
            return start.max(at_ms);
        }
    }
    at_ms
}

/// The instant of `minute` of `day` in `zone`: the earlier of two when clocks go back, the
/// first minute after the gap when they go forward.
pub(crate) fn instant(zone: Tz, day: NaiveDate, minute: u32) -> Option<i64> {
    let midnight: NaiveDateTime = day.and_hms_opt(0, 0, 0)?;
    let mut local = midnight + Duration::minutes(i64::from(minute));
    for _ in 0..=180 {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) => return Some(t.timestamp_millis()),
            LocalResult::Ambiguous(earlier, _) => return Some(earlier.timestamp_millis()),
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    None
}
