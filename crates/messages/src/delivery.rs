//! What happens after a send is handed over, as its channel reports it: delivered,
//! bounced (hard: the address or number does not exist, it gets nothing more on that
//! channel; soft: not this time), or complained of (marked as spam). Each report is a
//! `Message Delivered`, `Message Bounced` or `Message Complained` event on the customer's
//! timeline, once per send; a hard bounce or a complaint opts the person out of the
//! channel (source `hard_bounce`, `complaint`) and puts the address on the channel's
//! suppression list, so no later send tries again, to them or to whoever has it next.

use prossimo_store::{PlatformEvent, Store, StoreError, WriteDomain};
use serde_json::Value;

use crate::consent::{ALL_TOPICS, ConsentRecord, ConsentState, set_consent};
use crate::links::Links;
use crate::outbox::{Outbox, SendRecord};
use crate::sender::send_properties;
use crate::suppressions::suppress;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounce {
    Hard,
    Soft,
}

impl Bounce {
    pub fn as_str(self) -> &'static str {
        match self {
            Bounce::Hard => "hard",
            Bounce::Soft => "soft",
        }
    }
}

/// What a channel reported of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Delivered,
    Bounced {
        bounce: Bounce,
        code: Option<String>,
        detail: String,
    },
    /// The customer marked it as spam (a provider's feedback loop).
    Complained {
        feedback_type: String,
    },
}

/// Twilio's delivery errors that say the number will never get SMS: unknown handset,
/// landline, not a valid or mobile number.
const SMS_HARD_CODES: [&str; 5] = ["30005", "30006", "21211", "21612", "21614"];

/// A Twilio-shaped status callback's `MessageStatus` and `ErrorCode` as a report; `None`
/// for the steps on the way (`queued`, `sending`, `sent`, …).
pub fn sms_report(status: &str, error_code: Option<&str>) -> Option<Report> {
    let code = error_code
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    match status.trim() {
        "delivered" => Some(Report::Delivered),
        "undelivered" | "failed" => Some(Report::Bounced {
            bounce: if code.as_deref().is_some_and(|c| SMS_HARD_CODES.contains(&c)) {
                Bounce::Hard
            } else {
                Bounce::Soft
            },
            detail: format!("the provider reported {}", status.trim()),
            code,
        }),
        _ => None,
    }
}

/// Records channels' reports on a store's sends.
pub struct Deliveries<'a> {
    store: &'a Store,
    links: Links,
}

impl<'a> Deliveries<'a> {
    pub fn of(store: &'a Store) -> Result<Deliveries<'a>, StoreError> {
        Ok(Deliveries {
            links: Links::of(store)?,
            store,
        })
    }

    /// Records what an inbound e-mail (a DSN, an ARF report) says, when it is about one
    /// of our sends: the send, and whether the report was new. `None` when it is not
    /// ours or says nothing to record.
    pub fn record_inbound(
        &self,
        inbound: &crate::inbound::InboundReport,
        at: i64,
    ) -> Result<Option<(SendRecord, bool)>, StoreError> {
        let (Some(about), Some(report)) = (&inbound.about, &inbound.report) else {
            return Ok(None);
        };
        let Some(send) = Outbox::of(self.store)?.by_message_id(about)? else {
            return Ok(None);
        };
        let new = self.record(&send, report, at)?;
        Ok(Some((send, new)))
    }

    /// The send an SMS status callback's `token` names, if it is one of ours.
    pub fn sms_send(&self, token: &str) -> Result<Option<SendRecord>, StoreError> {
        match self.links.verify_sms_status(token) {
            Some(id) => Outbox::of(self.store)?.by_id(id),
            None => Ok(None),
        }
    }

    /// Records `report` of `send` at `at`: its event on the timeline (once: a provider
    /// that reports twice changes nothing), and for a hard bounce the opt-out. True when
    /// it was new.
    pub fn record(&self, send: &SendRecord, report: &Report, at: i64) -> Result<bool, StoreError> {
        let mut properties = send_properties(send);
        let (name, key) = match report {
            Report::Delivered => ("Message Delivered", "delivered"),
            Report::Bounced {
                bounce,
                code,
                detail,
            } => {
                properties.insert("bounce".into(), Value::from(bounce.as_str()));
                properties.insert("detail".into(), Value::from(detail.as_str()));
                if let Some(code) = code {
                    properties.insert("code".into(), Value::from(code.as_str()));
                }
                ("Message Bounced", "bounced")
            }
            Report::Complained { feedback_type } => {
                properties.insert("feedback_type".into(), Value::from(feedback_type.as_str()));
                ("Message Complained", "complained")
            }
        };
        let root = self.store.root_of(send.profile_id)?;
        let stored = self.store.record_platform_events(&[PlatformEvent {
            message_id: format!("{}/{key}", send.idempotency_key),
            profile_id: root,
            event: name.into(),
            channel: send.channel.touchpoint(),
            ts: at,
            properties: Value::Object(properties),
        }])?;
        let opt_out = match report {
            Report::Bounced {
                bounce: Bounce::Hard,
                code,
                detail,
            } => Some((
                "hard_bounce",
                match code {
                    Some(code) => format!("{}: {code} {detail}", send.idempotency_key),
                    None => format!("{}: {detail}", send.idempotency_key),
                },
            )),
            Report::Complained { feedback_type } => Some((
                "complaint",
                format!("{}: {feedback_type}", send.idempotency_key),
            )),
            _ => None,
        };
        if let Some((source, detail)) = opt_out {
            let change = ConsentRecord {
                channel: send.channel,
                topic: ALL_TOPICS.to_owned(),
                state: ConsentState::OptedOut,
                source: source.into(),
                detail: Some(detail),
                at,
            };
            // The address too, whoever has it next (a webhook's "address" is its
            // destination, never suppressed).
            let address = send
                .recipient
                .clone()
                .filter(|_| send.channel != crate::template::Channel::Webhook);
            self.store
                .write_transaction(WriteDomain::Decisions, |conn| {
                    if let Some(address) = &address {
                        suppress(
                            conn,
                            send.channel,
                            address,
                            source,
                            change.detail.as_deref(),
                            at,
                        )?;
                    }
                    set_consent(conn, root, &change)
                })?;
        }
        Ok(stored > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_statuses_are_reports_and_unknown_numbers_bounce_hard() {
        assert_eq!(sms_report("delivered", None), Some(Report::Delivered));
        assert_eq!(sms_report("sent", None), None);
        assert_eq!(sms_report("queued", Some("")), None);
        assert!(matches!(
            sms_report("undelivered", Some("30005")),
            Some(Report::Bounced { bounce: Bounce::Hard, code: Some(c), .. }) if c == "30005"
        ));
        assert!(matches!(
            sms_report("failed", Some("30003")),
            Some(Report::Bounced {
                bounce: Bounce::Soft,
                ..
            })
        ));
        assert!(matches!(
            sms_report("undelivered", None),
            Some(Report::Bounced {
                bounce: Bounce::Soft,
                code: None,
                ..
            })
        ));
    }
}
