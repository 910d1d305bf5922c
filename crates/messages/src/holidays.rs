//! Days marketing messages do not go out on, in the recipient's calendar: a day every
//! year (`12-25`), one date (`2027-06-02`), Easter Monday (moving), or a country's public
//! holidays at once (`IT`). A send that falls on one waits for the next day that is not.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

/// Italy's national public holidays: New Year, Epiphany, Liberation Day, Labour Day,
/// Republic Day, Assumption, All Saints, the Immaculate Conception, Christmas and
/// St Stephen's; Easter Monday beside them.
const ITALY: [(u32, u32); 10] = [
    (1, 1),
    (1, 6),
    (4, 25),
    (5, 1),
    (6, 2),
    (8, 15),
    (11, 1),
    (12, 8),
    (12, 25),
    (12, 26),
];

/// The holidays configured (`[messages] holidays`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays {
    every_year: BTreeSet<(u32, u32)>,
    dates: BTreeSet<NaiveDate>,
    easter_monday: bool,
}

impl Holidays {
    /// Reads `["IT", "12-31", "2027-06-03", "easter_monday"]`; the error names the entry.
    pub fn parse(entries: &[String]) -> Result<Holidays, String> {
        let mut holidays = Holidays::default();
        for entry in entries {
            let text = entry.trim();
            let bad = || {
                format!(
                    "{entry:?}: write a holiday as \"MM-DD\" (every year), \"YYYY-MM-DD\", \"easter_monday\" or a country (\"IT\")"
                )
            };
            if text.eq_ignore_ascii_case("IT") {
                holidays.every_year.extend(ITALY);
                holidays.easter_monday = true;
            } else if text.eq_ignore_ascii_case("easter_monday") {
                holidays.easter_monday = true;
            } else if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                holidays.dates.insert(date);
            } else {
                let (month, day) = text.split_once('-').ok_or_else(bad)?;
                let (month, day): (u32, u32) = (
                    month.parse().map_err(|_| bad())?,
                    day.parse().map_err(|_| bad())?,
                );
                // 2024 is a leap year: 02-29 is a day.
                NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
                holidays.every_year.insert((month, day));
            }
        }
        Ok(holidays)
    }

    pub fn is_empty(&self) -> bool {
        self.every_year.is_empty() && self.dates.is_empty() && !self.easter_monday
    }

    /// Whether `day` (a day of the recipient's calendar) is a holiday.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.every_year.contains(&(day.month(), day.day()))
            || self.dates.contains(&day)
            || (self.easter_monday
                && easter_sunday(day.year()).and_then(|e| e.succ_opt()) == Some(day))
    }
}

/// Easter Sunday of `year` in the Gregorian calendar (the anonymous Gregorian algorithm,
/// Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn easter_falls_where_the_calendar_says() {
        // Published dates of Easter Sunday.
        for (year, month, d) in [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(year), Some(day(year, month, d)), "{year}");
        }
    }

    #[test]
    fn italy_rests_on_its_holidays_and_easter_monday() {
        let it = Holidays::parse(&["IT".into()]).expect("valid");
        assert!(it.contains(day(2026, 12, 25)));
        assert!(it.contains(day(2026, 6, 2)));
        assert!(it.contains(day(2026, 4, 6)), "Easter Monday 2026");
        assert!(it.contains(day(2027, 3, 29)), "Easter Monday 2027");
        assert!(!it.contains(day(2026, 4, 5)), "Easter Sunday is not listed");
        assert!(!it.contains(day(2026, 12, 24)));
        let mine = Holidays::parse(&["12-24".into(), "2027-06-03".into()]).expect("valid");
        assert!(mine.contains(day(2031, 12, 24)));
        assert!(mine.contains(day(2027, 6, 3)));
        assert!(!mine.contains(day(2028, 6, 3)));
        assert!(Holidays::parse(&[]).expect("valid").is_empty());
        for bad in ["13-01", "02-30", "natale", "2027-02-30", ""] {
            assert!(Holidays::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(Holidays::parse(&["02-29".into()]).is_ok());
    }
}
