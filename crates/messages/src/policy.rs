//! The send-time policy beside consent, the same for every send: frequency caps (a
//! person's marketing messages in a rolling window, per channel or in all) and the hours
//! messages may go out in the recipient's time zone (quiet hours are the rest of the day).
//! Transactional sends are exempt. Pure: the sender gives it the person's recent sends and
//! zone.

use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::holidays::Holidays;
use crate::template::Channel;
use crate::window::{LocalWindow, instant, minute_of_day, next_allowed, person_zone};

/// At most `max` marketing messages (of `channel`, or of every channel) per `window_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrequencyCap {
    pub channel: Option<Channel>,
    pub max: u32,
    pub window_ms: i64,
}

impl FrequencyCap {
    /// Reads `"3 email per 7d"`, `"5 per 1d"`, `"1 sms per 12h"`.
    pub fn parse(text: &str) -> Result<FrequencyCap, String> {
        let bad = || {
            format!(
                "{text:?}: write a cap as \"<max> [email|sms|webhook] per <n>d\" or \"… per <n>h\", e.g. \"3 email per 7d\""
            )
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (max, channel, window) = match words.as_slice() {
            [max, "per", window] => (max, None, window),
            [max, channel, "per", window] => {
                (max, Some(Channel::parse(channel).ok_or_else(bad)?), window)
            }
            _ => return Err(bad()),
        };
        let max: u32 = max.parse().ok().filter(|m| *m > 0).ok_or_else(bad)?;
        let (count, unit) = window.split_at(window.len().saturating_sub(1));
        let count: i64 = count.parse().ok().filter(|c| *c > 0).ok_or_else(bad)?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        Ok(FrequencyCap {
            channel,
            max,
            window_ms: count.checked_mul(unit_ms).ok_or_else(bad)?,
        })
    }

    fn describe(&self) -> String {
        let hours = self.window_ms / 3_600_000;
        let window = if hours % 24 == 0 {
            format!("{} days", hours / 24)
        } else {
            format!("{hours} hours")
        };
        format!(
            "at most {} {}messages per {window}",
            self.max,
            self.channel
                .map_or(String::new(), |c| format!("{} ", c.as_str()))
        )
    }
}

/// Quiet hours as the window when messages may go out: `"21:00-08:00"` (overnight) lets
/// them go from 08:00 to 21:00.
pub fn parse_quiet_hours(text: &str) -> Result<LocalWindow, String> {
    let bad = || format!("{text:?}: write quiet hours as \"21:00-08:00\" (from, to, overnight)");
    let (from, to) = text.split_once('-').ok_or_else(bad)?;
    let (from, to) = (from.trim(), to.trim());
    let (start, end) = (
        minute_of_day(from).ok_or_else(bad)?,
        minute_of_day(to).ok_or_else(bad)?,
    );
    if start <= end {
        return Err(format!(
            "{text:?}: quiet hours run overnight (from the evening to the morning, as 21:00-08:00)"
        ));
    }
    LocalWindow::parse(&[], to, from).map_err(|(_, why)| why)
}

/// What the policy says of a send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Inside quiet hours: it waits until then.
    WaitUntil(i64),
    /// A cap is reached: it is skipped, with why.
    Skip {
        reason: String,
        detail: String,
    },
}

/// The send-time policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SendPolicy {
    pub caps: Vec<FrequencyCap>,
    /// When messages may go out, in the recipient's zone; none: any time.
    pub sending_hours: Option<LocalWindow>,
    /// Days they do not go out on, in the recipient's calendar.
    pub holidays: Holidays,
    /// The zone of a person without a valid `timezone` trait (`[time] zone`).
    pub zone: Tz,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            caps: Vec::new(),
            sending_hours: None,
            holidays: Holidays::default(),
            zone: chrono_tz::Europe::Rome,
        }
    }
}

impl SendPolicy {
    /// A person's zone: their `timezone` trait (`Europe/Rome`, `America/New_York`) when it
    /// names one, else the workspace's.
    pub fn zone_of(&self, traits: &Map<String, Value>) -> Tz {
        person_zone(traits, self.zone)
    }

    /// The longest cap's window: how far back a person's sends matter.
    pub fn lookback_ms(&self) -> i64 {
        self.caps.iter().map(|c| c.window_ms).max().unwrap_or(0)
    }

    /// Whether a send of `channel` goes `now` to a person in `zone` whose marketing
    /// messages that went out are `recent` (channel and time).
    pub fn decide(
        &self,
        channel: Channel,
        transactional: bool,
        zone: Tz,
        recent: &[(Channel, i64)],
        now: i64,
    ) -> Verdict {
        if transactional {
            return Verdict::Go;
        }
        for cap in &self.caps {
            if cap.channel.is_some_and(|c| c != channel) {
                continue;
            }
            let sent = recent
                .iter()
                .filter(|(c, at)| {
                    cap.channel.is_none_or(|cc| cc == *c) && *at > now - cap.window_ms
                })
                .count();
            if sent >= cap.max as usize {
                return Verdict::Skip {
                    reason: "frequency_cap".into(),
                    detail: format!("{sent} sent already: {}", cap.describe()),
                };
            }
        }
        let next = self.next_sending_time(now, zone);
        if next > now {
            Verdict::WaitUntil(next)
        } else {
            Verdict::Go
        }
    }

    /// The first instant at or after `now` inside the sending hours of a day that is not
    /// a holiday, in `zone`.
    fn next_sending_time(&self, now: i64, zone: Tz) -> i64 {
        let mut at = now;
        // A month of holidays in a row is a mistake in the configuration: stop there.
        for _ in 0..31 {
            if let Some(hours) = &self.sending_hours {
                at = next_allowed(at, zone, hours);
            }
            let Some(day) = chrono::DateTime::from_timestamp_millis(at)
                .map(|t| t.with_timezone(&zone).date_naive())
            else {
                return at;
            };
            if !self.holidays.contains(day) {
                return at;
            }
            match day.succ_opt().and_then(|next| instant(zone, next, 0)) {
                Some(midnight) => at = midnight,
                None => return at,
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const DAY: i64 = 86_400_000;

    #[test]
    fn caps_read_as_written_and_refuse_what_is_not_a_cap() {
        assert_eq!(
            FrequencyCap::parse("3 email per 7d"),
            Ok(FrequencyCap {
                channel: Some(Channel::Email),
                max: 3,
                window_ms: 7 * DAY
            })
        );
        assert_eq!(
            FrequencyCap::parse("5 per 12h"),
            Ok(FrequencyCap {
                channel: None,
                max: 5,
                window_ms: 12 * 3_600_000
            })
        );
        for bad in [
            "",
            "3 per",
            "0 per 7d",
            "3 fax per 7d",
            "3 per 7w",
            "x per 7d",
            "3 email 7d",
        ] {
            assert!(FrequencyCap::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cap_skips_marketing_and_spares_receipts() {
        let policy = SendPolicy {
            caps: vec![
                FrequencyCap::parse("2 email per 7d").unwrap(),
                FrequencyCap::parse("3 per 7d").unwrap(),
            ],
            ..SendPolicy::default()
        };
        let now = 100 * DAY;
        let rome = chrono_tz::Europe::Rome;
        let two_mails = [(Channel::Email, now - DAY), (Channel::Email, now - 2 * DAY)];
        assert!(
            matches!(policy.decide(Channel::Email, false, rome, &two_mails, now), Verdict::Skip { ref reason, .. } if reason == "frequency_cap")
        );
        assert_eq!(
            policy.decide(Channel::Email, true, rome, &two_mails, now),
            Verdict::Go,
            "transactional"
        );
        assert_eq!(
            policy.decide(Channel::Sms, false, rome, &two_mails, now),
            Verdict::Go,
            "the e-mail cap is the e-mail's"
        );
        let old = [
            (Channel::Email, now - 8 * DAY),
            (Channel::Email, now - 9 * DAY),
        ];
        assert_eq!(
            policy.decide(Channel::Email, false, rome, &old, now),
            Verdict::Go,
            "a rolling window"
        );
        let three = [
            (Channel::Sms, now - DAY),
            (Channel::Sms, now - DAY),
            (Channel::Email, now - DAY),
        ];
        assert!(
            matches!(
                policy.decide(Channel::Sms, false, rome, &three, now),
                Verdict::Skip { .. }
            ),
            "the cap over every channel"
        );
    }

    #[test]
    fn quiet_hours_wait_for_the_morning_in_the_recipients_zone_across_dst() {
        let policy = SendPolicy {
            sending_hours: Some(parse_quiet_hours("21:00-08:00").unwrap()),
            ..SendPolicy::default()
        };
        let rome = chrono_tz::Europe::Rome;
        // Saturday 28 March 2026, 23:30 in Rome (CET, UTC+1); clocks go forward that night.
        let late = rome
            .with_ymd_and_hms(2026, 3, 28, 23, 30, 0)
            .unwrap()
            .timestamp_millis();
        let morning = rome
            .with_ymd_and_hms(2026, 3, 29, 8, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            policy.decide(Channel::Email, false, rome, &[], late),
            Verdict::WaitUntil(morning)
        );
        assert_eq!(
            Utc.timestamp_millis_opt(morning).unwrap().to_rfc3339(),
            "2026-03-29T06:00:00+00:00",
            "08:00 CEST, the day after the change"
        );
        assert_eq!(
            policy.decide(Channel::Email, true, rome, &[], late),
            Verdict::Go,
            "a receipt goes at night"
        );
        let noon = rome
            .with_ymd_and_hms(2026, 3, 29, 12, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            policy.decide(Channel::Email, false, rome, &[], noon),
            Verdict::Go
        );
        // 23:30 in Rome is 17:30 in New York: a New Yorker gets it now.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            policy.decide(Channel::Email, false, ny, &[], late),
            Verdict::Go
        );
        let traits: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"timezone": "America/New_York"})).unwrap();
        assert_eq!(policy.zone_of(&traits), ny);
        let junk: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"timezone": "Mars/Olympus"})).unwrap();
        assert_eq!(policy.zone_of(&junk), rome);
    }

    #[test]
    fn a_holiday_holds_marketing_until_the_next_working_morning() {
        let policy = SendPolicy {
            sending_hours: Some(parse_quiet_hours("21:00-08:00").unwrap()),
            holidays: Holidays::parse(&["IT".into()]).unwrap(),
            ..SendPolicy::default()
        };
        let rome = chrono_tz::Europe::Rome;
        let at = |m: u32, d: u32, h: u32| {
            rome.with_ymd_and_hms(2026, m, d, h, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        // Christmas noon: St Stephen's is a holiday too, so the 27th at 08:00.
        assert_eq!(
            policy.decide(Channel::Email, false, rome, &[], at(12, 25, 12)),
            Verdict::WaitUntil(at(12, 27, 8))
        );
        // Easter Sunday night (not listed), then Easter Monday: Tuesday morning.
        assert_eq!(
            policy.decide(Channel::Email, false, rome, &[], at(4, 5, 22)),
            Verdict::WaitUntil(at(4, 7, 8))
        );
        assert_eq!(
            policy.decide(Channel::Email, true, rome, &[], at(12, 25, 12)),
            Verdict::Go,
            "a receipt goes on Christmas"
        );
        // Without quiet hours, a holiday waits for the next day's start.
        let no_hours = SendPolicy {
            holidays: Holidays::parse(&["12-25".into()]).unwrap(),
            ..SendPolicy::default()
        };
        assert_eq!(
            no_hours.decide(Channel::Sms, false, rome, &[], at(12, 25, 12)),
            Verdict::WaitUntil(at(12, 26, 0))
        );
    }

    #[test]
    fn quiet_hours_run_overnight() {
        assert!(parse_quiet_hours("21:00-08:00").is_ok());
        for bad in ["08:00-21:00", "21:00", "25:00-08:00", "21-8"] {
            assert!(parse_quiet_hours(bad).is_err(), "{bad}");
        }
    }
}
