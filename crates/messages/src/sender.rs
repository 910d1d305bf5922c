//! The sender: one per store (a lease), woken on the bus when messages are owed. It
//! claims the sends that are due, renders each for its person, hands it to its channel,
//! records the outcome (retrying what was refused for now, with backoff), and puts each
//! outcome on the customer's timeline as an event (`Message Sent`, `Message Skipped`,
//! `Message Failed`), once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prossimo_act::destinations::{DestinationKind, Destinations, NewDelivery};
use prossimo_bus::{Bus, Definitions, Happened, Subscription, Topic};
use prossimo_identity::ProfileId;
use prossimo_store::{PlatformEvent, ProfileFacts, Store, StoreError, WriteDomain};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::broadcasts::{BROADCAST_CHUNK, Broadcasts};
use crate::consent::{ALL_TOPICS, ConsentRecord, ConsentState, Consents, Refusal, allows};
use crate::context::Context;
use crate::email::{Outgoing, Sender, compose};
use crate::links::{Links, track_html};
use crate::mailer::{Handed, Mailer};
use crate::outbox::{InQuietHours, Outbox, Outcome, SendRecord, SendStatus};
use crate::policy::{SendPolicy, Verdict};
use crate::sms::{SenderIds, normalize_phone, segments};
use crate::stored::Messages;
use crate::suppressions::{Suppressions, address_of};
use crate::template::{Channel, Rendered, Template};
use crate::texter::{BAD_NUMBER_CODES, ProviderConfig, Text, Texted, Texter, UNSUBSCRIBED_CODE};

/// The e-mail channel: who sends, through what, and where its links lead.
#[derive(Debug)]
pub struct EmailChannel {
    pub sender: Sender,
    pub mailer: Mailer,
    /// Where people reach this server (`https://crm.negozio.it`): the base of the
    /// unsubscribe links; none, no links (and no List-Unsubscribe header).
    pub links_base: Option<String>,
    /// HTML e-mails carry an open pixel and their links go through this server.
    pub tracking: bool,
    /// The envelope sender (`MAIL FROM`) that bounces return to, when not the `From`.
    pub return_path: Option<lettre::Address>,
}

/// The SMS channel: through what, from whom, and how long a text may be.
#[derive(Debug)]
pub struct SmsChannel {
    pub texter: Texter,
    pub senders: SenderIds,
    /// The country of numbers written without their country code.
    pub default_country: Option<phonenumber::country::Id>,
    /// A text longer than this many segments is not sent (`too_long`).
    pub max_segments: usize,
    /// Where people and the provider reach this server: the base of the status
    /// callbacks and of `{{ unsubscribe_url }}`.
    pub links_base: Option<String>,
}

/// The channels configured; a send to a channel that is not is skipped
/// (`channel_not_configured`). Webhook messages need no channel: they go to the
/// store's destinations of kind `messages`.
#[derive(Debug, Default)]
pub struct Channels {
    pub email: Option<EmailChannel>,
    pub sms: Option<SmsChannel>,
}

/// How SMS go out (`[sms]` in `prossimo.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConfig {
    /// A provider with Twilio's API; without one, texts are written to `folder`.
    pub provider: Option<ProviderConfig>,
    pub folder: std::path::PathBuf,
    /// The sender: a number (`+39…`) or an alphanumeric id (`Negozio`).
    pub from: String,
    /// Per recipient country (`IT`): the sender shown there.
    pub sender_ids: std::collections::BTreeMap<String, String>,
    /// The country of numbers written without their country code (`IT`).
    pub default_country: Option<phonenumber::country::Id>,
    pub max_segments: usize,
    pub links_base: Option<String>,
}

/// How e-mail is sent (`[email]` in `prossimo.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// The sender of every e-mail (`Negozio <news@negozio.it>`).
    pub from: String,
    /// An SMTP server (see [`Mailer::smtp`]); without one, e-mails are written to `folder`.
    pub smtp_url: Option<String>,
    pub folder: std::path::PathBuf,
    /// SMTP connections kept open.
    pub connections: u32,
    pub timeout: Duration,
    pub dkim: Option<DkimKey>,
    /// The base of the unsubscribe links (see [`EmailChannel::links_base`]).
    pub links_base: Option<String>,
    /// Opens and clicks are tracked (see [`EmailChannel::tracking`]).
    pub tracking: bool,
    /// See [`EmailChannel::return_path`].
    pub return_path: Option<String>,
    /// Where the inbound SMTP listener for bounces and complaints listens
    /// (`127.0.0.1:2525`); none: not started.
    pub bounce_listen: Option<String>,
}

/// A DKIM key: the domain and selector it is published under, and the private key (PEM).
#[derive(Clone, PartialEq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub pem: String,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("[email] {0}")]
    Email(String),
    #[error("[sms] {0}")]
    Sms(String),
}

impl Channels {
    /// The channels `email` and `sms` configure; must be called inside a Tokio runtime
    /// (SMTP connections are pooled on it).
    pub fn open(
        email: Option<&EmailConfig>,
        sms: Option<&SmsConfig>,
    ) -> Result<Channels, ChannelError> {
        Ok(Channels {
            email: email.map(open_email).transpose()?,
            sms: sms.map(open_sms).transpose()?,
        })
    }
}

fn open_sms(config: &SmsConfig) -> Result<SmsChannel, ChannelError> {
    let texter = match &config.provider {
        Some(provider) => Texter::provider(provider.clone()),
        None => Texter::folder(&config.folder),
    }
    .map_err(ChannelError::Sms)?;
    Ok(SmsChannel {
        texter,
        senders: SenderIds::new(&config.from, config.sender_ids.clone())
            .map_err(ChannelError::Sms)?,
        default_country: config.default_country,
        max_segments: config.max_segments.max(1),
        links_base: config.links_base.clone(),
    })
}

fn open_email(config: &EmailConfig) -> Result<EmailChannel, ChannelError> {
    let fail = |e: &dyn std::fmt::Display| ChannelError::Email(e.to_string());
    let dkim = config
        .dkim
        .as_ref()
        .map(|key| crate::dkim::DkimSigner::from_pem(&key.domain, &key.selector, &key.pem))
        .transpose()
        .map_err(|e| fail(&e))?;
    let sender = Sender::new(&config.from, dkim).map_err(|e| fail(&e))?;
    let mailer = match &config.smtp_url {
        Some(url) => Mailer::smtp(url, config.connections, config.timeout),
        None => Mailer::folder(&config.folder),
    }
    .map_err(|e| fail(&e))?;
    let return_path = config
        .return_path
        .as_deref()
        .map(|address| {
            address
                .trim()
                .parse::<lettre::Address>()
                .map_err(|e| ChannelError::Email(format!("return_path {address:?}: {e}")))
        })
        .transpose()?;
    Ok(EmailChannel {
        sender,
        mailer,
        links_base: config.links_base.clone(),
        tracking: config.tracking,
        return_path,
    })
}

/// When to try a send refused for now again, and when to give up on it.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRetry {
    /// Attempts in all, the first included; then the send fails (`gave_up`).
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub factor: u32,
    pub max_delay: Duration,
}

impl Default for SendRetry {
    /// 6 attempts over about 3 hours: 30 s, 2 min, 8 min, 32 min, 2 h.
    fn default() -> Self {
        SendRetry {
            max_attempts: 6,
            first_delay: Duration::from_secs(30),
            factor: 4,
            max_delay: Duration::from_secs(2 * 3600),
        }
    }
}

impl SendRetry {
    /// What becomes of a send whose `attempts`-th attempt was refused for now at `now`.
    pub fn after(&self, attempts: u32, now: i64, detail: String) -> Outcome {
        if attempts >= self.max_attempts {
            return Outcome::Failed {
                reason: "gave_up".into(),
                detail: format!("refused {attempts} times; last: {detail}"),
            };
        }
        let growth = f64::from(self.factor).powi(attempts.saturating_sub(1) as i32);
        let delay = (self.first_delay.as_secs_f64() * growth).min(self.max_delay.as_secs_f64());
        Outcome::Retry {
            at: now + (delay * 1000.0) as i64,
            detail,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub retry: SendRetry,
    /// Sends handed to channels at once.
    pub concurrency: usize,
    /// Sends claimed per round.
    pub batch: usize,
    /// The longest it sleeps without being woken.
    pub poll: Duration,
    /// Marketing sends go only to people who opted in (else to everyone who did not opt
    /// out).
    pub require_opt_in: bool,
    /// Frequency caps and quiet hours.
    pub policy: SendPolicy,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            retry: SendRetry::default(),
            concurrency: 32,
            batch: 500,
            poll: Duration::from_secs(1),
            require_opt_in: false,
            policy: SendPolicy::default(),
        }
    }
}

/// What the sender has done since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SenderStatus {
    pub ready: bool,
    pub standby: bool,
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
    pub retried: u64,
    /// Held for quiet hours.
    pub deferred: u64,
    pub last_error: Option<String>,
}

struct Shared {
    store: Arc<Store>,
    /// Signs the links of the messages; read once the lease is held.
    links: std::sync::OnceLock<Links>,
    channels: Arc<Channels>,
    config: SenderConfig,
    bus: Bus,
    wake: Notify,
    stopping: watch::Sender<bool>,
    status: Mutex<SenderStatus>,
}

/// Handle on the sender; [`MessageSender::stop`] stops it.
#[derive(Clone)]
pub struct MessageSender {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    _subscription: Arc<Subscription>,
}

impl MessageSender {
    /// Starts sending, woken when messages are owed; must be called inside a Tokio
    /// runtime.
    pub fn start(
        store: Arc<Store>,
        channels: Arc<Channels>,
        config: SenderConfig,
        bus: &Bus,
    ) -> MessageSender {
        let shared = Arc::new(Shared {
            store,
            links: std::sync::OnceLock::new(),
            channels,
            config,
            bus: bus.clone(),
            wake: Notify::new(),
            stopping: watch::Sender::new(false),
            status: Mutex::new(SenderStatus::default()),
        });
        let woken = Arc::clone(&shared);
        let subscription = bus.subscribe(
            "sender",
            &[Topic::MessagesOwed, Topic::DefinitionsChanged],
            move |happened| match happened {
                Happened::MessagesOwed | Happened::DefinitionsChanged(Definitions::Messages) => {
                    woken.wake.notify_one()
                }
                _ => {}
            },
        );
        let task = tokio::spawn(run(Arc::clone(&shared)));
        MessageSender {
            shared,
            task: Arc::new(Mutex::new(Some(task))),
            _subscription: Arc::new(subscription),
        }
    }

    pub fn status(&self) -> SenderStatus {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Stops claiming, lets the round in flight be handed over and recorded, gives the
    /// lease back.
    pub async fn stop(&self) {
        self.shared.stopping.send_replace(true);
        self.shared.wake.notify_one();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the sender failed");
        }
    }
}

fn stopping(shared: &Shared) -> bool {
    *shared.stopping.borrow()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("store task failed: {e}"))))
}

fn note_error(shared: &Shared, error: &StoreError) {
    tracing::warn!(error = %error, "the sender will try again");
    if let Ok(mut status) = shared.status.lock() {
        status.last_error = Some(error.to_string());
    }
}

async fn run(shared: Arc<Shared>) {
    let mut stop = shared.stopping.subscribe();
    // One sender per store, or two nodes would send every message twice.
    let _lease = loop {
        if stopping(&shared) {
            return;
        }
        let store = Arc::clone(&shared.store);
        match blocking(move || store.try_lease("sender")).await {
            Ok(Some(lease)) => break lease,
            Ok(None) => {
                if let Ok(mut status) = shared.status.lock() {
                    status.standby = true;
                }
            }
            Err(e) => note_error(&shared, &e),
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.config.poll * 5) => {}
            _ = stop.changed() => {}
        }
    };
    loop {
        let store = Arc::clone(&shared.store);
        match blocking(move || Links::of(&store)).await {
            Ok(links) => {
                let _ = shared.links.set(links);
                break;
            }
            Err(e) => note_error(&shared, &e),
        }
        if stopping(&shared) {
            return;
        }
        tokio::time::sleep(shared.config.poll).await;
    }
    let store = Arc::clone(&shared.store);
    let settled = blocking(move || {
        let now = store.now_ms();
        Outbox::of(&store)?.settle_interrupted(now)
    })
    .await;
    match settled {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            sends = n,
            "sends interrupted by a stop are marked uncertain, not sent again"
        ),
        Err(e) => note_error(&shared, &e),
    }
    if let Ok(mut status) = shared.status.lock() {
        status.ready = true;
        status.standby = false;
    }
    while !stopping(&shared) {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Err(e) = log_outcomes(&shared).await {
            note_error(&shared, &e);
        }
        // A broadcast's next members join the outbox before the round is claimed.
        let store = Arc::clone(&shared.store);
        let broadcasting =
            match blocking(move || Broadcasts::of(&store)?.owe_next_chunk(BROADCAST_CHUNK)).await {
                Ok(owed) => owed > 0,
                Err(e) => {
                    note_error(&shared, &e);
                    false
                }
            };
        let (store, batch) = (Arc::clone(&shared.store), shared.config.batch);
        let claimed = blocking(move || {
            let now = store.now_ms();
            Outbox::of(&store)?.claim(now, batch)
        })
        .await;
        let sends = match claimed {
            Ok(sends) => sends,
            Err(e) => {
                note_error(&shared, &e);
                tokio::time::sleep(shared.config.poll).await;
                continue;
            }
        };
        if sends.is_empty() && broadcasting {
            continue;
        }
        if sends.is_empty() {
            let store = Arc::clone(&shared.store);
            let next = blocking(move || Outbox::of(&store)?.next_due())
                .await
                .ok()
                .flatten();
            let now = shared.store.now_ms();
            let poll = shared.config.poll.as_millis() as i64;
            let wait = next.map_or(poll, |at| (at - now).clamp(1, poll));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // A claimed round is always handed over and recorded, even when stopping.
        let outcomes = hand_round(&shared, sends).await;
        let store = Arc::clone(&shared.store);
        let count = outcomes.len();
        let recorded = blocking(move || {
            let now = store.now_ms();
            Outbox::of(&store)?.record(&outcomes, now)
        })
        .await;
        if let Err(e) = recorded {
            // The sends stay `sending`: after a restart they are uncertain, never sent twice.
            note_error(&shared, &e);
        } else {
            tracing::debug!(sends = count, "round recorded");
        }
    }
    if let Err(e) = log_outcomes(&shared).await {
        note_error(&shared, &e);
    }
    tracing::info!("sender stopped");
}

/// What every send of a round needs from the store, read once.
struct RoundFacts {
    templates: HashMap<String, Result<Arc<Template>, String>>,
    people: HashMap<ProfileId, ProfileFacts>,
    /// Consent of each send's person (their root and the profile the send names).
    consent: HashMap<ProfileId, Vec<ConsentRecord>>,
    /// The marketing messages that went to each send's person within the longest cap.
    recent: HashMap<ProfileId, Vec<(Channel, i64)>>,
    /// The round's sends whose address is on its channel's suppression list: send id →
    /// that address.
    suppressed: HashMap<i64, String>,
}

/// The country of numbers written without one, as the SMS channel is configured.
fn default_country(channels: &Channels) -> Option<phonenumber::country::Id> {
    channels.sms.as_ref().and_then(|s| s.default_country)
}

fn read_round(
    store: &Store,
    channels: &Channels,
    sends: &[SendRecord],
    lookback_ms: i64,
) -> Result<RoundFacts, StoreError> {
    let messages = Messages::of(store)?;
    let mut templates = HashMap::new();
    for slug in sends
        .iter()
        .map(|s| s.template.as_str())
        .collect::<HashSet<_>>()
    {
        let compiled = match messages.get(slug)? {
            Some(record) => Template::compile(&record.content)
                .map(Arc::new)
                .map_err(|problems| {
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                }),
            None => Err(format!("no message {slug:?}")),
        };
        templates.insert(slug.to_owned(), compiled);
    }
    let ids: Vec<ProfileId> = sends.iter().map(|s| s.profile_id).collect();
    let roots = store.roots(&ids)?;
    let root_ids: Vec<ProfileId> = roots.values().copied().collect();
    let facts: HashMap<ProfileId, ProfileFacts> = store
        .profile_facts(&root_ids)?
        .into_iter()
        .map(|f| (f.id, f))
        .collect();
    let people: HashMap<ProfileId, ProfileFacts> = ids
        .iter()
        .filter_map(|id| Some((*id, facts.get(roots.get(id)?)?.clone())))
        .collect();
    // Each send's person's consent: of the profile it names and of their root now.
    let mut asked: Vec<ProfileId> = ids.clone();
    asked.extend(roots.values().copied());
    let stored = Consents::of(store)?.of_many(&asked)?;
    let mut consent = HashMap::new();
    for id in ids.iter().copied().collect::<HashSet<_>>() {
        let mut records = stored.get(&id).cloned().unwrap_or_default();
        if let Some(root) = roots.get(&id).filter(|root| **root != id) {
            records.extend(stored.get(root).cloned().unwrap_or_default());
        }
        consent.insert(id, records);
    }
    let mut recent: HashMap<ProfileId, Vec<(Channel, i64)>> = HashMap::new();
    if lookback_ms > 0 {
        let since = store.now_ms() - lookback_ms;
        for (profile, channel, at) in Outbox::of(store)?.marketing_sent(&ids, since)? {
            recent.entry(profile).or_default().push((channel, at));
        }
    }
    let addressed: Vec<(i64, (Channel, String))> = sends
        .iter()
        .filter_map(|send| {
            let person: &ProfileFacts = people.get(&send.profile_id)?;
            let address = address_of(send.channel, &person.traits, default_country(channels))?;
            Some((send.id, (send.channel, address)))
        })
        .collect();
    let listed = Suppressions::of(store)?
        .suppressed(&addressed.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>())?;
    let suppressed = addressed
        .into_iter()
        .filter(|(_, address)| listed.contains(address))
        .map(|(id, (_, address))| (id, address))
        .collect();
    Ok(RoundFacts {
        templates,
        people,
        consent,
        recent,
        suppressed,
    })
}

async fn hand_round(shared: &Arc<Shared>, sends: Vec<SendRecord>) -> Vec<(i64, Outcome)> {
    let store = Arc::clone(&shared.store);
    let ids: Vec<i64> = sends.iter().map(|s| s.id).collect();
    let lookback = shared.config.policy.lookback_ms();
    let channels = Arc::clone(&shared.channels);
    let (round, sends) = match blocking(move || {
        let round = read_round(&store, &channels, &sends, lookback)?;
        Ok((round, sends))
    })
    .await
    {
        Ok(read) => read,
        Err(e) => {
            note_error(shared, &e);
            let now = shared.store.now_ms();
            return ids
                .into_iter()
                .map(|id| {
                    (
                        id,
                        Outcome::Retry {
                            at: now + shared.config.retry.first_delay.as_millis() as i64,
                            detail: format!("cannot read the store: {e}"),
                        },
                    )
                })
                .collect();
        }
    };
    // Screened one after another, so two sends to one person in a round count against
    // the same cap.
    let now = shared.store.now_ms();
    let mut recent = round.recent.clone();
    let mut outcomes = Vec::new();
    let mut cleared = Vec::new();
    for send in sends {
        match screen(shared, &round, &send, recent.get(&send.profile_id), now) {
            Err(outcome) => outcomes.push((send.id, outcome)),
            Ok(()) => {
                if !send.transactional {
                    recent
                        .entry(send.profile_id)
                        .or_default()
                        .push((send.channel, now));
                }
                cleared.push(send);
            }
        }
    }
    let round = Arc::new(round);
    let permits = Arc::new(Semaphore::new(shared.config.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    for send in cleared {
        let (shared, round, permits) =
            (Arc::clone(shared), Arc::clone(&round), Arc::clone(&permits));
        in_flight.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let id = send.id;
            (id, hand_one(&shared, &round, send).await)
        });
    }
    while let Some(done) = in_flight.join_next().await {
        match done {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => tracing::error!(error = %e, "a send's task failed"),
        }
    }
    if let Ok(mut status) = shared.status.lock() {
        for (_, outcome) in &outcomes {
            match outcome {
                Outcome::Sent { .. } => status.sent += 1,
                Outcome::Skipped { .. } => status.skipped += 1,
                Outcome::Failed { .. } => status.failed += 1,
                Outcome::Retry { .. } => status.retried += 1,
                Outcome::Deferred { .. } => status.deferred += 1,
            }
        }
    }
    outcomes
}

fn skipped(reason: &str, detail: impl Into<String>) -> Outcome {
    Outcome::Skipped {
        reason: reason.into(),
        detail: detail.into(),
    }
}

/// What a message is rendered over: the person (`profile`: traits, `computed`: RFM, CLV,
/// P(alive)…) and what the send carries (`event`: what triggered it, `journey`).
pub fn render_context(facts: &ProfileFacts, send_context: &Value) -> Context {
    let mut root = match send_context {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    root.insert("profile".into(), Value::Object(facts.traits.clone()));
    root.insert("computed".into(), Value::Object(facts.computed.clone()));
    Context::from_json(&Value::Object(root))
}

/// What the send must pass before it is handed over: its message, its person, their
/// consent and the send-time policy. `Err` is what becomes of it instead.
fn screen(
    shared: &Shared,
    round: &RoundFacts,
    send: &SendRecord,
    recent: Option<&Vec<(Channel, i64)>>,
    now: i64,
) -> Result<(), Outcome> {
    let template = match round.templates.get(&send.template) {
        Some(Ok(template)) => template,
        Some(Err(why)) => return Err(skipped("message_missing", why.clone())),
        None => {
            return Err(skipped(
                "message_missing",
                format!("no message {:?}", send.template),
            ));
        }
    };
    let Some(person) = round.people.get(&send.profile_id) else {
        return Err(skipped("profile_missing", "the customer no longer exists"));
    };
    if template.content().channel != send.channel {
        return Err(Outcome::Failed {
            reason: "wrong_channel".into(),
            detail: format!(
                "message {:?} is for {}, the send for {}",
                send.template,
                template.content().channel.as_str(),
                send.channel.as_str()
            ),
        });
    }
    if let Some(address) = round.suppressed.get(&send.id) {
        return Err(skipped(
            "suppressed",
            format!(
                "{address} is on the {} suppression list",
                send.channel.as_str()
            ),
        ));
    }
    let consent = round
        .consent
        .get(&send.profile_id)
        .map_or(&[][..], Vec::as_slice);
    if let Err(refusal) = allows(
        consent,
        send.channel,
        send.topic.as_deref(),
        send.transactional,
        shared.config.require_opt_in,
    ) {
        return Err(skipped(
            refusal.reason(),
            match refusal {
                Refusal::Unsubscribed => format!(
                    "the customer left {} of {}",
                    send.topic
                        .as_deref()
                        .map_or("every topic".into(), |t| format!("topic {t:?}")),
                    send.channel.as_str()
                ),
                Refusal::NoConsent => "opt-in is required and the customer never opted in".into(),
            },
        ));
    }
    let policy = &shared.config.policy;
    let zone = policy.zone_of(&person.traits);
    match policy.decide(
        send.channel,
        send.transactional,
        zone,
        recent.map_or(&[][..], Vec::as_slice),
        now,
    ) {
        Verdict::Go => Ok(()),
        Verdict::WaitUntil(_) if send.in_quiet_hours == InQuietHours::Skip => Err(skipped(
            "quiet_hours",
            format!("quiet hours in {zone}, and the step skips rather than waits"),
        )),
        Verdict::WaitUntil(at) => Err(Outcome::Deferred {
            at,
            reason: "quiet_hours".into(),
            detail: format!("quiet hours in {zone}; it goes at the next allowed time"),
        }),
        Verdict::Skip { reason, detail } => Err(skipped(&reason, detail)),
    }
}

async fn hand_one(shared: &Shared, round: &RoundFacts, send: SendRecord) -> Outcome {
    let (Some(Ok(template)), Some(person)) = (
        round.templates.get(&send.template),
        round.people.get(&send.profile_id),
    ) else {
        return skipped("message_missing", "screened without its message or person");
    };
    match send.channel {
        Channel::Email => hand_email(shared, template, person, &send).await,
        Channel::Sms => hand_sms(shared, template, person, &send).await,
        Channel::Webhook => hand_webhook(shared, template, person, &send).await,
    }
}

/// `template` rendered for `person` and `send`, with `{{ unsubscribe_url }}` when the
/// send has one.
fn render_for(
    template: &Template,
    person: &ProfileFacts,
    send: &SendRecord,
    unsubscribe_url: Option<&str>,
) -> Result<Rendered, Outcome> {
    let mut context = send.context.clone();
    if let (Some(url), Value::Object(fields)) = (unsubscribe_url, &mut context) {
        fields.insert("unsubscribe_url".into(), Value::from(url));
    }
    template
        .render(&render_context(person, &context))
        .map_err(|problem| Outcome::Failed {
            reason: "template_error".into(),
            detail: format!("{}: {}", problem.field, problem.reason),
        })
}

/// The unsubscribe link of a marketing send (a receipt is not something to unsubscribe
/// from).
fn unsubscribe_link(shared: &Shared, base: Option<&String>, send: &SendRecord) -> Option<String> {
    match (base, shared.links.get()) {
        (Some(base), Some(links)) if !send.transactional => {
            Some(links.unsubscribe_url(base, send.id))
        }
        _ => None,
    }
}

async fn hand_email(
    shared: &Shared,
    template: &Template,
    person: &ProfileFacts,
    send: &SendRecord,
) -> Outcome {
    let Some(email) = &shared.channels.email else {
        return skipped("channel_not_configured", "no e-mail channel is configured");
    };
    let Some(address) = person.traits.get("email").and_then(Value::as_str) else {
        return skipped("no_address", "the customer has no `email` trait");
    };
    let unsubscribe_url = unsubscribe_link(shared, email.links_base.as_ref(), send);
    let mut rendered = match render_for(template, person, send, unsubscribe_url.as_deref()) {
        Ok(rendered) => rendered,
        Err(outcome) => return outcome,
    };
    if let (true, Some(base), Some(links), Some(html)) = (
        email.tracking,
        &email.links_base,
        shared.links.get(),
        &rendered.html,
    ) {
        rendered.html = Some(track_html(
            html,
            unsubscribe_url.as_deref().unwrap_or_default(),
            |target| links.click_url(base, send.id, target),
            &links.open_url(base, send.id),
        ));
    }
    let mut composed = match compose(
        &email.sender,
        &Outgoing {
            to: address,
            rendered: &rendered,
            idempotency_key: &send.idempotency_key,
            unsubscribe_url: unsubscribe_url.as_deref(),
            date: shared.store.now_ms(),
        },
    ) {
        Ok(composed) => composed,
        Err(e) => return skipped("bad_address", e.to_string()),
    };
    if let Some(return_path) = &email.return_path {
        composed.from = return_path.clone();
    }
    match email.mailer.hand(&composed).await {
        Handed::Accepted(detail) => Outcome::Sent {
            recipient: composed.to.to_string(),
            message_id: composed.message_id,
            detail,
        },
        Handed::Permanent(detail) => Outcome::Failed {
            reason: "refused".into(),
            detail,
        },
        Handed::Transient(detail) => {
            shared
                .config
                .retry
                .after(send.attempts, shared.store.now_ms(), detail)
        }
    }
}

async fn hand_sms(
    shared: &Shared,
    template: &Template,
    person: &ProfileFacts,
    send: &SendRecord,
) -> Outcome {
    let Some(sms) = &shared.channels.sms else {
        return skipped("channel_not_configured", "no SMS channel is configured");
    };
    let Some(raw) = person.traits.get("phone").and_then(Value::as_str) else {
        return skipped("no_address", "the customer has no `phone` trait");
    };
    let to = match normalize_phone(raw, sms.default_country) {
        Ok(to) => to,
        Err(e) => return skipped("bad_address", e.to_string()),
    };
    let unsubscribe_url = unsubscribe_link(shared, sms.links_base.as_ref(), send);
    let rendered = match render_for(template, person, send, unsubscribe_url.as_deref()) {
        Ok(rendered) => rendered,
        Err(outcome) => return outcome,
    };
    let cost = segments(&rendered.text);
    if cost.count == 0 {
        return skipped("empty", "the text is empty once written for this customer");
    }
    if cost.count > sms.max_segments {
        return Outcome::Failed {
            reason: "too_long".into(),
            detail: format!(
                "{} segments ({}), more than the {} allowed",
                cost.count,
                cost.encoding.as_str(),
                sms.max_segments
            ),
        };
    }
    let status_callback = match (&sms.links_base, shared.links.get()) {
        (Some(base), Some(links)) => Some(links.sms_status_url(base, send.id)),
        _ => None,
    };
    let text = Text {
        to: &to,
        from: sms.senders.for_recipient(&to),
        body: &rendered.text,
        key: &send.idempotency_key,
        status_callback: status_callback.as_deref(),
    };
    match sms.texter.hand(&text).await {
        Texted::Accepted { sid, detail } => Outcome::Sent {
            recipient: to.clone(),
            message_id: sid,
            detail: format!(
                "{detail}; {} segment(s), {}",
                cost.count,
                cost.encoding.as_str()
            ),
        },
        Texted::Transient(detail) => {
            shared
                .config
                .retry
                .after(send.attempts, shared.store.now_ms(), detail)
        }
        Texted::Permanent {
            code: Some(UNSUBSCRIBED_CODE),
            detail,
        } => {
            // They replied STOP to the provider: so be it here too.
            let (store, profile, key) = (
                Arc::clone(&shared.store),
                send.profile_id,
                send.idempotency_key.clone(),
            );
            let detail_kept = detail.clone();
            let recorded = blocking(move || {
                Consents::of(&store)?.set(
                    store.root_of(profile)?,
                    &ConsentRecord {
                        channel: Channel::Sms,
                        topic: ALL_TOPICS.to_owned(),
                        state: ConsentState::OptedOut,
                        source: "provider".into(),
                        detail: Some(format!("{key}: {detail_kept}")),
                        at: store.now_ms(),
                    },
                )
            })
            .await;
            if let Err(e) = recorded {
                note_error(shared, &e);
            }
            skipped("unsubscribed", detail)
        }
        Texted::Permanent {
            code: Some(code),
            detail,
        } if BAD_NUMBER_CODES.contains(&code) => skipped("bad_address", detail),
        Texted::Permanent { detail, .. } => Outcome::Failed {
            reason: "refused".into(),
            detail,
        },
        Texted::Unknown(detail) => Outcome::Failed {
            reason: "no_answer".into(),
            detail: format!("{detail}; not sent again: it may have gone out"),
        },
    }
}

/// A webhook message goes into the outbox of its destination (of kind `messages`),
/// which the dispatcher delivers with Standard Webhooks' signature and retries; the
/// webhook id is the send's, so a receiver can tell a retry from a new message.
async fn hand_webhook(
    shared: &Shared,
    template: &Template,
    person: &ProfileFacts,
    send: &SendRecord,
) -> Outcome {
    let Some(destination) = template.content().destination.clone() else {
        return skipped("destination_missing", "the message names no destination");
    };
    let rendered = match render_for(template, person, send, None) {
        Ok(rendered) => rendered,
        Err(outcome) => return outcome,
    };
    let mut data = send_properties(send);
    data.insert("profile_id".into(), Value::from(send.profile_id));
    data.insert(
        "body".into(),
        rendered.payload.unwrap_or(Value::Object(Map::new())),
    );
    let store = Arc::clone(&shared.store);
    let send_key = send.idempotency_key.clone();
    let profile_id = send.profile_id;
    let queued = blocking(move || {
        let Some(target) = Destinations::of(&store)?.by_name(&destination)? else {
            return Ok(Err(skipped(
                "destination_missing",
                format!("no destination {destination:?}"),
            )));
        };
        if target.kind != DestinationKind::Messages {
            return Ok(Err(skipped(
                "destination_missing",
                format!(
                    "destination {destination:?} receives {}, not messages",
                    target.kind.as_str()
                ),
            )));
        }
        if !target.enabled {
            return Ok(Err(skipped(
                "destination_disabled",
                format!("destination {destination:?} is disabled"),
            )));
        }
        let now = store.now_ms();
        let webhook_id = format!("msg_send_{send_key}");
        let payload = serde_json::json!({
            "type": "message.webhook",
            "timestamp": prossimo_model::format_millis(now).unwrap_or_default(),
            "data": Value::Object(data),
        });
        store.write_transaction(WriteDomain::Decisions, |conn| {
            prossimo_act::destinations::enqueue(
                conn,
                &[NewDelivery {
                    destination_id: target.id,
                    profile_id,
                    webhook_id: webhook_id.clone(),
                    payload,
                }],
                now,
            )
        })?;
        Ok(Ok((destination, webhook_id)))
    })
    .await;
    match queued {
        Ok(Ok((destination, webhook_id))) => {
            shared.bus.publish(Happened::OutboxWritten);
            Outcome::Sent {
                recipient: destination.clone(),
                message_id: webhook_id,
                detail: format!("queued for destination {destination:?}"),
            }
        }
        Ok(Err(outcome)) => outcome,
        Err(e) => {
            note_error(shared, &e);
            shared
                .config
                .retry
                .after(send.attempts, shared.store.now_ms(), e.to_string())
        }
    }
}

/// The timeline event of a send's outcome: its name, and what it says.
pub fn outcome_event(send: &SendRecord) -> Option<(&'static str, Value)> {
    let name = match send.status {
        SendStatus::Sent => "Message Sent",
        SendStatus::Skipped => "Message Skipped",
        SendStatus::Failed => "Message Failed",
        SendStatus::Owed | SendStatus::Sending | SendStatus::Uncertain => return None,
    };
    let mut properties = send_properties(send);
    let fields = [
        ("reason", send.reason.as_deref()),
        ("detail", send.detail.as_deref()),
        ("message_id", send.message_id.as_deref()),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            properties.insert(key.into(), Value::from(value));
        }
    }
    Some((name, Value::Object(properties)))
}

/// What every event about a send says of it: the message, channel, send key, topic,
/// whether transactional, and the journey and step that owed it.
pub fn send_properties(send: &SendRecord) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("message".into(), Value::from(send.template.as_str()));
    map.insert("channel".into(), Value::from(send.channel.as_str()));
    map.insert("send".into(), Value::from(send.idempotency_key.as_str()));
    map.insert("transactional".into(), Value::from(send.transactional));
    if let Some(topic) = &send.topic {
        map.insert("topic".into(), Value::from(topic.as_str()));
    }
    if let crate::outbox::Origin::Broadcast { broadcast_id } = &send.origin {
        map.insert("broadcast_id".into(), Value::from(*broadcast_id));
    }
    if let crate::outbox::Origin::Journey { journey_id, step } = &send.origin {
        map.insert("journey_id".into(), Value::from(*journey_id));
        map.insert("step".into(), Value::from(step.as_str()));
        if let Some(journey) = send.context.get("journey").and_then(|j| j.get("slug")) {
            map.insert("journey".into(), journey.clone());
        }
    }
    map
}

/// Puts the outcomes not yet on the timeline there, once each.
async fn log_outcomes(shared: &Shared) -> Result<(), StoreError> {
    loop {
        let store = Arc::clone(&shared.store);
        let stored = blocking(move || {
            let outbox = Outbox::of(&store)?;
            let sends = outbox.unlogged(1000)?;
            let events: Vec<PlatformEvent> = sends
                .iter()
                .filter_map(|send| {
                    let (name, properties) = outcome_event(send)?;
                    Some(PlatformEvent {
                        message_id: format!("{}/{}", send.idempotency_key, send.status.as_str()),
                        profile_id: send.profile_id,
                        event: name.into(),
                        channel: send.channel.touchpoint(),
                        ts: send.updated_at,
                        properties,
                    })
                })
                .collect();
            let stored = store.record_platform_events(&events)?;
            let ids: Vec<i64> = sends.iter().map(|s| s.id).collect();
            outbox.mark_logged(&ids)?;
            Ok((ids.len(), stored))
        })
        .await?;
        if stored.1 > 0 {
            shared.bus.publish(Happened::EventsCommitted {
                buyers: Arc::from([]),
            });
        }
        if stored.0 < 1000 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_refusals_back_off_then_give_up() {
        let retry = SendRetry::default();
        assert_eq!(
            retry.after(1, 0, "451".into()),
            Outcome::Retry {
                at: 30_000,
                detail: "451".into()
            }
        );
        assert_eq!(
            retry.after(2, 0, "451".into()),
            Outcome::Retry {
                at: 120_000,
                detail: "451".into()
            }
        );
        assert_eq!(
            retry.after(5, 0, "451".into()),
            Outcome::Retry {
                at: 2 * 3600 * 1000,
                detail: "451".into()
            }
        );
        assert!(matches!(
            retry.after(6, 0, "451".into()),
            Outcome::Failed { reason, .. } if reason == "gave_up"
        ));
    }
}
