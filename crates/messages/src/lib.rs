//! Messages: what a journey (and later a broadcast) sends, and how it reaches the
//! customer.
//!
//! - `template` (pure): a message's content ([`Content`]: Liquid subject and body, MJML,
//!   HTML or text), checked and compiled ([`Template::compile`], every [`Problem`] with
//!   its field, line and column) and rendered per person ([`Template::render`]);
//!   `context` is what Liquid reads (missing values are nil, as marketers expect).
//! - `email` (pure): the bytes of an e-mail (text and HTML parts, a `Message-ID` derived
//!   from the send's idempotency key, one-click unsubscribe), signed by `dkim`.
//! - `policy` (pure): frequency caps, quiet hours and holidays in the recipient's zone
//!   ([`SendPolicy`]); `holidays` (pure): the days, Easter Monday and Italy's included.
//! - `stored`: the messages marketers write ([`Messages`]), this crate's tables and
//!   migrations ([`SCHEMA`]).
//! - `broadcasts`: one message to an audience's members ([`Broadcasts`]), owed by the
//!   sender in chunks with a cursor, through the same outbox and policy.
//! - `outbox`: every send owed, once per idempotency key ([`owe`], in the caller's
//!   transaction), and what became of it ([`Outbox`]).
//! - `suppressions`: addresses and numbers that get nothing on a channel, whoever has
//!   them ([`Suppressions`]); hard bounces and complaints add to it.
//! - `consent`: whether a person may get a channel's messages of a topic ([`allows`]),
//!   stored with its history ([`Consents`]), and the one-click unsubscribe.
//! - `links`: links signed with the store's secret (the unsubscribe link of a send).
//! - `window` (pure): local time windows and the next instant inside one, across
//!   daylight-saving changes (journeys' delay windows, the hours messages may go out).
//! - `tracking`: opens (a pixel) and clicks (links through this server) of sent e-mails,
//!   machine fetches flagged rather than counted ([`Tracking`], [`is_machine`]).
//! - `mailer`: where e-mails go: an SMTP server, or a folder of `.eml` files.
//! - `sms` (pure): GSM-7/UCS-2 segments, E.164 numbers, the sender per country;
//!   `country` (pure): a number's country and a country's zone.
//! - `texter`: where SMS go: a provider with Twilio's API (its status callbacks signed
//!   and checked), or a folder of `.txt` files.
//! - `inbound` (pure): DSNs (RFC 3464) and ARF complaints (RFC 5965) read with
//!   `mail-parser`; `bounces`: the inbound SMTP listener that records them.
//! - `delivery`: what channels report after a send (`Message Delivered`, `Message
//!   Bounced`; a hard bounce opts the person out of the channel).
//! - `sender`: the service that claims due sends, hands them over, retries what was
//!   refused for now and puts every outcome on the customer's timeline
//!   ([`MessageSender`]).

mod bounces;
mod broadcasts;
mod consent;
mod context;
mod country;
mod delivery;
mod dkim;
mod email;
mod holidays;
mod inbound;
mod links;
mod mailer;
mod outbox;
mod policy;
mod sender;
mod sms;
mod stored;
mod suppressions;
mod template;
mod texter;
mod tracking;
mod window;

pub use bounces::{BounceListener, MAX_CONNECTIONS, MAX_REPORT_BYTES};
pub use broadcasts::{
    BROADCAST_CHUNK, BroadcastInput, BroadcastRecord, BroadcastState, Broadcasts,
};
pub use consent::{
    ALL_TOPICS, ConsentRecord, ConsentState, Consents, Refusal, Unsubscribed, allows, check_topic,
    set_consent,
};
pub use context::Context;
pub use country::{country_of_phone, zone_of_country};
pub use delivery::{Bounce, Deliveries, Report, sms_report};
pub use dkim::{DkimError, DkimSigner};
pub use email::{Composed, EmailError, Outgoing, Sender, compose, message_id};
pub use holidays::{Holidays, easter_sunday};
pub use inbound::{InboundReport, read_report};
pub use links::{Links, track_html};
pub use mailer::{Handed, Mailer, MailerError};
pub use outbox::{InQuietHours, NewSend, Origin, Outbox, Outcome, SendRecord, SendStatus, owe};
pub use policy::{FrequencyCap, SendPolicy, Verdict, parse_quiet_hours};
pub use sender::{
    ChannelError, Channels, DkimKey, EmailChannel, EmailConfig, MessageSender, SendRetry,
    SenderConfig, SenderStatus, SmsChannel, SmsConfig, outcome_event, render_context,
    send_properties,
};
pub use sms::{Encoding, PhoneError, Segments, SenderIds, normalize_phone, segments};
pub use stored::{MAX_BODY_BYTES, MessageError, MessageInput, MessageRecord, Messages, SCHEMA};
pub use suppressions::{
    MAX_SUPPRESSIONS_PER_CALL, Suppression, Suppressions, address_of, suppress, suppression_key,
};
pub use template::{Channel, Content, Format, Problem, Rendered, Template};
pub use texter::{ProviderConfig, Text, Texted, Texter, signature, verify_signature};
pub use tracking::{Fetch, Tracking, is_machine};
pub use window::{LocalWindow, minute_of_day, next_allowed, person_zone};
