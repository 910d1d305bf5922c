//! Settings: one struct, [`Settings`], filled from `prossimo.toml`, then `PROSSIMO_*`
//! environment variables, then flags (`--set key=value` and the named ones), each layer
//! overriding the one before (see `layered.rs`). Every key has its default here, so
//! `prossimo config` prints what is in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::TimeDelta;
use prossimo_act::targets::parse_networks;
use prossimo_act::{DispatchConfig, TargetPolicy};
use prossimo_console::TrustedProxies;
use prossimo_identity::IdentityConfig;
use prossimo_messages::{
    DkimKey, EmailConfig, FrequencyCap, Holidays, ProviderConfig, SendPolicy, SendRetry,
    SenderConfig, SmsConfig, parse_quiet_hours,
};
use prossimo_model::{DEFAULT_MAX_AMOUNT, Limits, Money};
use prossimo_server::{AnalystConfig, PipelineConfig, ServeConfig};
use prossimo_store::{Location, StoreOptions};
use serde::{Deserialize, Serialize};

use crate::layered::{self, Kind, Source};

/// Every setting (see the commented `prossimo.example.toml` in the repository root).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// PostgreSQL connection string (scale-out); wins over `data_dir`.
    pub database: Option<String>,
    /// Address of the HTTP API and the console.
    pub listen: String,
    /// Where browsers reach the server (behind a proxy or TLS), for the SDK's settings.
    pub public_url: Option<String>,
    pub server: ServerSection,
    pub console: ConsoleSection,
    pub storage: StorageSection,
    pub identity: IdentitySection,
    pub ingest: IngestSection,
    pub money: MoneySection,
    pub analytics: AnalyticsSection,
    pub destinations: DestinationsSection,
    pub time: TimeSection,
    pub messages: MessagesSection,
    pub email: EmailSection,
    pub sms: SmsSection,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("prossimo-data"),
            database: None,
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            server: ServerSection::default(),
            console: ConsoleSection::default(),
            storage: StorageSection::default(),
            identity: IdentitySection::default(),
            ingest: IngestSection::default(),
            money: MoneySection::default(),
            analytics: AnalyticsSection::default(),
            destinations: DestinationsSection::default(),
            time: TimeSection::default(),
            messages: MessagesSection::default(),
            email: EmailSection::default(),
            sms: SmsSection::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeSection {
    /// The workspace's time zone (IANA, e.g. "Europe/Rome"): the zone of a customer without
    /// a `timezone` trait, for quiet hours and journeys' local times.
    pub zone: String,
}

impl Default for TimeSection {
    fn default() -> Self {
        TimeSection {
            zone: "Europe/Rome".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesSection {
    /// When marketing messages wait, in each customer's time zone, e.g. "21:00-08:00"
    /// (overnight); empty: never. Transactional messages go at once.
    pub quiet_hours: String,
    /// Frequency caps on marketing messages, each "<max> [email|sms|webhook] per <n>d" (or
    /// <n>h), e.g. ["3 email per 7d", "5 per 7d"]; a send over a cap is skipped.
    pub caps: Vec<String>,
    /// Days marketing messages wait out, in each customer's calendar: "MM-DD" every year,
    /// "YYYY-MM-DD", "easter_monday", or "IT" for Italy's public holidays.
    pub holidays: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSection {
    /// The sender of every e-mail, e.g. "Negozio <news@negozio.it>".
    pub from: String,
    /// The SMTP server, e.g. "smtp://user:password@smtp.example.com:587?tls=required" or
    /// "smtps://user:password@smtp.example.com:465". Without one, e-mails are written as
    /// .eml files to <data_dir>/mail.
    pub smtp_url: Option<String>,
    /// SMTP connections kept open.
    pub connections: u32,
    /// Per SMTP exchange.
    pub timeout_seconds: f64,
    /// Attempts in all for an e-mail refused for now (a 4xx reply, a failed connection)
    /// before it fails; each retry waits 4 times longer than the one before, from
    /// first_retry_seconds, at most 2 hours.
    pub max_attempts: u32,
    pub first_retry_seconds: f64,
    /// Marketing e-mails go only to people who opted in to their topic or to e-mail (GDPR
    /// opt-in); false: to everyone who did not opt out. Transactional sends always go.
    pub require_opt_in: bool,
    /// HTML e-mails carry an open pixel and their links go through this server, recorded
    /// as Message Opened and Message Clicked (machine fetches flagged).
    pub track_opens_and_clicks: bool,
    /// DKIM: the domain and selector the public key is published under
    /// (<selector>._domainkey.<domain>), and the file of the RSA private key (PEM).
    pub dkim_domain: Option<String>,
    pub dkim_selector: Option<String>,
    pub dkim_key_file: Option<PathBuf>,
    /// The envelope sender (MAIL FROM) bounces return to, e.g. "bounces@negozio.it";
    /// empty: the address of `from`.
    pub return_path: String,
    /// Where an inbound SMTP listener takes the bounces (DSNs) and complaints (ARF
    /// reports) that come back, e.g. "127.0.0.1:2525" (route the return path's mail
    /// there from your MTA); empty: none.
    pub bounce_listen: String,
}

impl Default for EmailSection {
    fn default() -> Self {
        EmailSection {
            from: "Prossimo <prossimo@localhost>".into(),
            smtp_url: None,
            connections: 8,
            timeout_seconds: 30.0,
            max_attempts: SendRetry::default().max_attempts,
            first_retry_seconds: SendRetry::default().first_delay.as_secs_f64(),
            require_opt_in: false,
            track_opens_and_clicks: true,
            dkim_domain: None,
            dkim_selector: None,
            dkim_key_file: None,
            return_path: String::new(),
            bounce_listen: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSection {
    /// The sender: a number ("+393331234567") or an alphanumeric id of 1–11 letters and
    /// digits ("Negozio").
    pub from: String,
    /// The sender per recipient country, e.g. { IT = "Negozio", US = "+14155550100" }
    /// (alphanumeric ids are not allowed everywhere).
    pub sender_ids: BTreeMap<String, String>,
    /// The country of numbers written without their country code (ISO, e.g. "IT");
    /// empty: [identity] phone_region.
    pub default_country: String,
    /// Longer texts are not sent (each segment is billed).
    pub max_segments: u32,
    /// An SMS provider with Twilio's Messages API: its base URL, account and auth token
    /// (the auth token also checks the signature of its status callbacks). Without an
    /// account_sid, texts are written as .txt files to <data_dir>/sms.
    pub provider_url: String,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    /// Per request to the provider.
    pub timeout_seconds: f64,
}

impl Default for SmsSection {
    fn default() -> Self {
        SmsSection {
            from: "Prossimo".into(),
            sender_ids: BTreeMap::new(),
            default_country: String::new(),
            max_segments: 6,
            provider_url: "https://api.twilio.com".into(),
            account_sid: None,
            auth_token: None,
            timeout_seconds: 15.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Longest wait for a request's headers, and for the next request on an idle
    /// keep-alive connection.
    pub header_read_timeout_seconds: f64,
    /// Longest time to receive a request's body.
    pub body_read_timeout_seconds: f64,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish.
    pub shutdown_grace_seconds: f64,
}

impl Default for ServerSection {
    fn default() -> Self {
        let d = ServeConfig::default();
        ServerSection {
            header_read_timeout_seconds: d.header_read_timeout.as_secs_f64(),
            body_read_timeout_seconds: d.body_read_timeout.as_secs_f64(),
            max_connections: d.max_connections,
            shutdown_grace_seconds: d.shutdown_grace.as_secs_f64(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Reverse proxies in front of the server whose X-Forwarded-For names the client, as
    /// networks or addresses, e.g. ["127.0.0.1", "10.0.0.0/8"]; none by default (the
    /// connection's address counts).
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// How long a write waits for another writer's lock before failing with 503.
    pub lock_wait_seconds: f64,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            lock_wait_seconds: StoreOptions::default().lock_wait.as_secs_f64(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DestinationsSection {
    /// Attempts in all before a delivery goes to the dead-letter list.
    pub max_attempts: u32,
    /// Wait before the first retry; each next one waits 4 times longer.
    pub first_retry_seconds: f64,
    /// The longest wait between retries.
    pub max_retry_hours: f64,
    /// Per request.
    pub timeout_seconds: f64,
    /// Private networks webhooks may reach anyway, e.g. ["10.20.0.0/16", "127.0.0.1"];
    /// loopback, private, link-local and metadata addresses are refused otherwise.
    pub allowed_private_networks: Vec<String>,
}

impl Default for DestinationsSection {
    fn default() -> Self {
        let d = DispatchConfig::default();
        DestinationsSection {
            max_attempts: d.retry.max_attempts,
            first_retry_seconds: d.retry.first_delay.as_secs_f64(),
            max_retry_hours: d.retry.max_delay.as_secs_f64() / 3600.0,
            timeout_seconds: d.timeout.as_secs_f64(),
            allowed_private_networks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsSection {
    /// Hours between the server's full analysis runs; 0 runs them only on demand
    /// (`POST /v1/analytics/run`). A store not analysed for that long is analysed when
    /// the server starts.
    pub refresh_hours: f64,
}

impl Default for AnalyticsSection {
    fn default() -> Self {
        AnalyticsSection {
            refresh_hours: AnalystConfig::default()
                .refresh_every
                .map_or(0.0, |every| every.as_secs_f64() / 3600.0),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoneySection {
    /// The reporting currency every order is converted into.
    pub currency: String,
    /// Reporting-currency units per unit of another currency, e.g. `{ USD = 0.92 }`.
    /// An order in a currency without a rate is refused.
    pub rates: BTreeMap<String, f64>,
    /// The largest amount (`revenue`, `total`, `price`, `value`, refunds), positive or
    /// negative, a message may carry once converted; more is refused.
    pub max_amount: f64,
}

impl Default for MoneySection {
    fn default() -> Self {
        MoneySection {
            currency: Money::default().reporting().to_owned(),
            rates: BTreeMap::new(),
            max_amount: DEFAULT_MAX_AMOUNT,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// Most identifiers of one kind a profile may hold, e.g. `{ user_id = 1, email = 5 }`
    /// (these override the built-in limits: user_id 1, email 5, phone 5, anonymous_id 100,
    /// others 5).
    pub limits: BTreeMap<String, usize>,
    /// Extra placeholder values never used as identifiers.
    pub blocklist: Vec<String>,
    /// Default placeholder values that are real identifiers here, e.g. ["0"].
    pub allow: Vec<String>,
    /// Regular expressions; matching values are never used as identifiers.
    pub blocklist_patterns: Vec<String>,
    /// ISO country whose national phone numbers are normalised to E.164, e.g. "IT".
    pub phone_region: Option<String>,
    /// Traits whose values identify a person, e.g. ["loyalty_card"].
    pub trait_identifiers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Per message.
    pub max_message_bytes: usize,
    /// Per request, after gzip decompression.
    pub max_batch_bytes: usize,
    /// Per batch.
    pub max_batch_messages: usize,
    /// How many hours after its arrival an event time may lie before it is corrected to
    /// the arrival time.
    pub max_clock_skew_hours: f64,
    /// Requests waiting for the writer before 429.
    pub queue_requests: usize,
    /// Messages per group commit.
    pub max_group_messages: usize,
}

impl Default for IngestSection {
    fn default() -> Self {
        let (limits, pipeline) = (Limits::default(), PipelineConfig::default());
        IngestSection {
            max_message_bytes: limits.max_message_bytes,
            max_batch_bytes: limits.max_batch_bytes,
            max_batch_messages: limits.max_batch_messages,
            max_clock_skew_hours: limits.max_clock_skew.num_seconds() as f64 / 3600.0,
            queue_requests: pipeline.queue_requests,
            max_group_messages: pipeline.max_group_messages,
        }
    }
}

/// `PROSSIMO_*` variables that are not settings: the file, logging, first-start keys and
/// passwords, tests and benchmarks.
const NOT_SETTINGS: [&str; 10] = [
    "PROSSIMO_CONFIG",
    "PROSSIMO_LOG",
    "PROSSIMO_WRITE_KEY",
    "PROSSIMO_ADMIN_TOKEN",
    "PROSSIMO_ADMIN_PASSWORD",
    "PROSSIMO_USER_PASSWORD",
    "PROSSIMO_DEMO",
    "PROSSIMO_TEST_DATABASE_URL",
    "PROSSIMO_BENCH_DATABASE",
    "PROSSIMO_URL",
];

/// A value a flag gives a setting: `--set key=value`, or a named flag such as `--listen`.
#[derive(Debug, Clone)]
pub struct FlagValue {
    pub key: String,
    pub value: String,
}

impl FlagValue {
    /// Reads `key=value`.
    pub fn parse(text: &str) -> Result<FlagValue, String> {
        let (key, value) = text.split_once('=').ok_or_else(|| {
            format!("{text:?}: expected key=value, e.g. ingest.max_batch_bytes=2000000")
        })?;
        Ok(FlagValue {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        })
    }
}

impl Settings {
    /// The settings in force: `file` (or `./prossimo.toml` when it exists), then the
    /// `PROSSIMO_*` variables of `env`, then `flags`, each overriding the one before.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[FlagValue],
    ) -> Result<Settings> {
        let (mut table, origin) = match file {
            Some(path) => (read_table(path)?, path.display().to_string()),
            None if Path::new("prossimo.toml").exists() => (
                read_table(Path::new("prossimo.toml"))?,
                "prossimo.toml".to_owned(),
            ),
            None => (toml::Table::new(), "the defaults".to_owned()),
        };
        let keys = Settings::keys();
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("PROSSIMO_"))
            .collect();
        env.sort();
        for (name, value) in env {
            match layered::key_of_variable(&name, &keys) {
                Some(key) => layered::set(
                    &mut table,
                    key,
                    keys[key],
                    &value,
                    &Source::Environment(name.clone()),
                )
                .map_err(anyhow::Error::msg)?,
                None if NOT_SETTINGS.contains(&name.as_str()) => {}
                None => tracing::warn!(
                    variable = %name,
                    "not a setting: ignored (settings are PROSSIMO_<SECTION>__<KEY>, see `prossimo config`)"
                ),
            }
        }
        for flag in flags {
            let kind = keys.get(&flag.key).copied().ok_or_else(|| {
                anyhow::anyhow!(
                    "--set {}: no such setting; `prossimo config` lists them all",
                    flag.key
                )
            })?;
            let source = Source::Flag(format!("{}={}", flag.key, flag.value));
            layered::set(&mut table, &flag.key, kind, &flag.value, &source)
                .map_err(anyhow::Error::msg)?;
        }
        Settings::deserialize(toml::Value::Table(table)).with_context(|| {
            format!("invalid configuration (from {origin}, PROSSIMO_* variables and flags)")
        })
    }

    /// Every setting's dotted key, and what kind of value it takes.
    pub fn keys() -> BTreeMap<String, Kind> {
        layered::keys::<Settings>()
    }

    /// The settings in force as TOML, with the database password hidden.
    pub fn to_redacted_toml(&self) -> Result<String> {
        let mut shown = self.clone();
        shown.database = shown.database.as_deref().map(redact_password);
        shown.email.smtp_url = shown.email.smtp_url.as_deref().map(redact_password);
        if shown.sms.auth_token.is_some() {
            shown.sms.auth_token = Some("********".into());
        }
        Ok(toml::to_string_pretty(&shown)?)
    }

    pub fn identity(&self) -> Result<IdentityConfig> {
        let s = &self.identity;
        let mut config = IdentityConfig::default()
            .with_blocked_values(s.blocklist.iter().cloned())
            .with_allowed_values(s.allow.iter().cloned())
            .with_blocked_patterns(s.blocklist_patterns.iter().cloned())?
            .with_trait_identifiers(s.trait_identifiers.iter().cloned());
        for (kind, &limit) in &s.limits {
            config = config.with_limit(kind, limit)?;
        }
        if let Some(region) = &s.phone_region {
            config = config.with_phone_region(region)?;
        }
        Ok(config)
    }

    pub fn money(&self) -> Result<Money> {
        let m = &self.money;
        Money::new(&m.currency, m.rates.iter().map(|(c, r)| (c.clone(), *r)))
            .and_then(|money| money.with_max_amount(m.max_amount))
            .context("invalid [money] configuration")
    }

    pub fn dispatch(&self) -> Result<DispatchConfig> {
        let d = &self.destinations;
        let mut config = DispatchConfig::default();
        if d.max_attempts == 0 {
            anyhow::bail!("[destinations] max_attempts must be at least 1");
        }
        config.retry.max_attempts = d.max_attempts;
        config.retry.first_delay =
            positive_seconds("destinations", "first_retry_seconds", d.first_retry_seconds)?;
        config.retry.max_delay = positive_seconds(
            "destinations",
            "max_retry_hours",
            d.max_retry_hours * 3600.0,
        )?;
        config.timeout = positive_seconds("destinations", "timeout_seconds", d.timeout_seconds)?;
        config.targets = std::sync::Arc::new(
            TargetPolicy::allowing(&d.allowed_private_networks)
                .map_err(|e| anyhow::anyhow!("[destinations] allowed_private_networks: {e}"))?,
        );
        Ok(config)
    }

    /// The workspace's time zone.
    pub fn zone(&self) -> Result<chrono_tz::Tz> {
        self.time.zone.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "[time] zone: {:?} is not an IANA time zone such as \"Europe/Rome\"",
                self.time.zone
            )
        })
    }

    /// How e-mail goes out: the SMTP server, or the folder `<data_dir>/mail`.
    pub fn email(&self) -> Result<EmailConfig> {
        let e = &self.email;
        if e.connections == 0 {
            anyhow::bail!("[email] connections must be at least 1");
        }
        let dkim = match (&e.dkim_domain, &e.dkim_selector, &e.dkim_key_file) {
            (None, None, None) => None,
            (Some(domain), Some(selector), Some(file)) => Some(DkimKey {
                domain: domain.clone(),
                selector: selector.clone(),
                pem: std::fs::read_to_string(file).with_context(|| {
                    format!("[email] dkim_key_file: cannot read {}", file.display())
                })?,
            }),
            _ => anyhow::bail!(
                "[email] DKIM needs dkim_domain, dkim_selector and dkim_key_file together"
            ),
        };
        Ok(EmailConfig {
            from: e.from.clone(),
            smtp_url: e.smtp_url.clone().filter(|url| !url.trim().is_empty()),
            folder: self.data_dir.join("mail"),
            connections: e.connections,
            timeout: positive_seconds("email", "timeout_seconds", e.timeout_seconds)?,
            dkim,
            tracking: e.track_opens_and_clicks,
            return_path: Some(e.return_path.trim().to_owned()).filter(|r| !r.is_empty()),
            bounce_listen: Some(e.bounce_listen.trim().to_owned()).filter(|b| !b.is_empty()),
            // Unsubscribe links lead where people reach the server.
            links_base: Some(self.links_base()),
        })
    }

    /// How SMS go out: the provider, or the folder `<data_dir>/sms`.
    pub fn sms(&self) -> Result<SmsConfig> {
        let s = &self.sms;
        let country = match s.default_country.trim() {
            "" => self.identity.phone_region.clone(),
            code => Some(code.to_owned()),
        };
        let default_country = country
            .map(|code| {
                code.trim().to_ascii_uppercase().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "[sms] default_country: {code:?} is not an ISO 3166 country code (e.g. IT)"
                    )
                })
            })
            .transpose()?;
        if s.max_segments == 0 {
            anyhow::bail!("[sms] max_segments must be at least 1");
        }
        let provider = match (&s.account_sid, &s.auth_token) {
            (None, _) => None,
            (Some(account_sid), Some(auth_token)) => Some(ProviderConfig {
                api_url: s.provider_url.clone(),
                account_sid: account_sid.clone(),
                auth_token: auth_token.clone(),
                timeout: positive_seconds("sms", "timeout_seconds", s.timeout_seconds)?,
            }),
            (Some(_), None) => anyhow::bail!("[sms] account_sid needs its auth_token"),
        };
        Ok(SmsConfig {
            provider,
            folder: self.data_dir.join("sms"),
            from: s.from.clone(),
            sender_ids: s.sender_ids.clone(),
            default_country,
            max_segments: usize::try_from(s.max_segments).unwrap_or(usize::MAX),
            links_base: Some(self.links_base()),
        })
    }

    /// Where people (and providers' callbacks) reach the server.
    fn links_base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// How the sender paces itself and retries.
    pub fn sender(&self) -> Result<SenderConfig> {
        let e = &self.email;
        if e.max_attempts == 0 {
            anyhow::bail!("[email] max_attempts must be at least 1");
        }
        let mut config = SenderConfig::default();
        config.retry.max_attempts = e.max_attempts;
        config.retry.first_delay =
            positive_seconds("email", "first_retry_seconds", e.first_retry_seconds)?;
        config.concurrency = usize::try_from(e.connections).unwrap_or(8) * 4;
        config.require_opt_in = e.require_opt_in;
        let m = &self.messages;
        config.policy = SendPolicy {
            caps: m
                .caps
                .iter()
                .map(|cap| FrequencyCap::parse(cap))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("[messages] caps: {e}"))?,
            sending_hours: Some(m.quiet_hours.trim())
                .filter(|q| !q.is_empty())
                .map(parse_quiet_hours)
                .transpose()
                .map_err(|e| anyhow::anyhow!("[messages] quiet_hours: {e}"))?,
            zone: self.zone()?,
            holidays: Holidays::parse(&m.holidays)
                .map_err(|e| anyhow::anyhow!("[messages] holidays: {e}"))?,
        };
        Ok(config)
    }

    pub fn store_options(&self) -> Result<StoreOptions> {
        Ok(StoreOptions {
            lock_wait: positive_seconds(
                "storage",
                "lock_wait_seconds",
                self.storage.lock_wait_seconds,
            )?,
        })
    }

    pub fn analyst(&self) -> Result<AnalystConfig> {
        let hours = self.analytics.refresh_hours;
        if !(hours.is_finite() && hours >= 0.0) {
            anyhow::bail!("[analytics] refresh_hours must be 0 or more hours, not {hours}");
        }
        Ok(AnalystConfig {
            refresh_every: (hours > 0.0).then(|| Duration::from_secs_f64(hours * 3600.0)),
        })
    }

    pub fn limits(&self) -> Result<Limits> {
        let s = &self.ingest;
        let hours = s.max_clock_skew_hours;
        if !(hours.is_finite() && (0.0..=24.0 * 365.0).contains(&hours)) {
            anyhow::bail!("[ingest] max_clock_skew_hours must be between 0 and 8760, not {hours}");
        }
        Ok(Limits {
            max_message_bytes: s.max_message_bytes,
            max_batch_bytes: s.max_batch_bytes,
            max_batch_messages: s.max_batch_messages,
            max_clock_skew: TimeDelta::seconds((hours * 3600.0) as i64),
        })
    }

    pub fn serve(&self) -> Result<ServeConfig> {
        let s = &self.server;
        let seconds = |name: &str, v: f64| -> Result<Duration> {
            if v.is_finite() && v > 0.0 && v <= 3600.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                anyhow::bail!("[server] {name} must be between 0 and 3600 seconds, not {v}")
            }
        };
        if s.max_connections == 0 {
            anyhow::bail!("[server] max_connections must be at least 1");
        }
        Ok(ServeConfig {
            header_read_timeout: seconds(
                "header_read_timeout_seconds",
                s.header_read_timeout_seconds,
            )?,
            body_read_timeout: seconds("body_read_timeout_seconds", s.body_read_timeout_seconds)?,
            max_connections: s.max_connections,
            shutdown_grace: seconds("shutdown_grace_seconds", s.shutdown_grace_seconds)?,
        })
    }

    pub fn trusted_proxies(&self) -> Result<TrustedProxies> {
        let networks = parse_networks(&self.console.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("[console] trusted_proxies: {e}"))?;
        Ok(TrustedProxies(networks.into()))
    }

    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            queue_requests: self.ingest.queue_requests,
            max_group_messages: self.ingest.max_group_messages,
        }
    }

    /// Where the data lives: `database` wins over `data_dir`.
    pub fn location(&self) -> Location {
        match &self.database {
            Some(url) => Location::Postgres {
                url: url.clone(),
                schema: None,
            },
            None => Location::DataDir(self.data_dir.clone()),
        }
    }
}

fn positive_seconds(section: &str, name: &str, value: f64) -> Result<Duration> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        anyhow::bail!("[{section}] {name} must be more than 0, not {value}")
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
}

/// `postgres://user:secret@host/db` shown as `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../prossimo.example.toml");

    fn load(file: &str, env: &[(&str, &str)], flags: &[&str]) -> Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prossimo.toml");
        std::fs::write(&path, file).unwrap();
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let flags: Vec<FlagValue> = flags.iter().map(|f| FlagValue::parse(f).unwrap()).collect();
        Settings::load(Some(&path), env, &flags)
    }

    #[test]
    fn example_config_in_the_repository_parses() {
        let config = load(EXAMPLE, &[], &[]).unwrap();
        config.identity().unwrap();
        assert_eq!(config.money().unwrap().reporting(), "EUR");
        assert_eq!(
            config.analyst().unwrap().refresh_every,
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(config.identity.phone_region.as_deref(), Some("IT"));
        assert_eq!(
            config.store_options().unwrap().lock_wait,
            Duration::from_secs(10)
        );
        config.serve().unwrap();
        config.dispatch().unwrap();
        config.limits().unwrap();
        config.trusted_proxies().unwrap();
    }

    /// Every setting is in the commented example, set or shown commented out.
    #[test]
    fn the_example_names_every_setting() {
        let example: toml::Table = toml::from_str(EXAMPLE).unwrap();
        let keys = Settings::keys();
        assert!(keys.len() > 30, "{keys:?}");
        for key in keys.keys() {
            let mut node = Some(&example);
            let levels: Vec<&str> = key.split('.').collect();
            let (leaf, sections) = levels.split_last().unwrap();
            for level in sections {
                node = node
                    .and_then(|n| n.get(*level))
                    .and_then(toml::Value::as_table);
            }
            let set = node.is_some_and(|n| n.contains_key(*leaf));
            let commented = EXAMPLE
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("# {leaf} =")));
            assert!(set || commented, "{key} is not in prossimo.example.toml");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(load("data_dri = \"x\"", &[], &[]).is_err());
        let err = load("", &[], &["ingest.max_batch_bytez=1"]).unwrap_err();
        assert!(err.to_string().contains("ingest.max_batch_bytez"), "{err}");
    }

    #[test]
    fn flags_win_over_variables_which_win_over_the_file() {
        let file =
            "data_dir = \"from-file\"\n[ingest]\nmax_batch_bytes = 1000\nqueue_requests = 7\n";
        let config = load(file, &[], &[]).unwrap();
        assert_eq!(config.location(), Location::DataDir("from-file".into()));
        assert_eq!(config.ingest.max_batch_bytes, 1000);
        let env = [
            ("PROSSIMO_DATA_DIR", "2024"),
            ("PROSSIMO_INGEST__MAX_BATCH_BYTES", "2000"),
            ("PROSSIMO_MONEY__RATES", "{ USD = 0.5 }"),
            ("PROSSIMO_CONSOLE__TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
            ("PROSSIMO_WRITE_KEY", "wk_not_a_setting"),
        ];
        let config = load(file, &env, &[]).unwrap();
        assert_eq!(
            config.location(),
            Location::DataDir("2024".into()),
            "a directory, not a number"
        );
        assert_eq!(config.ingest.max_batch_bytes, 2000);
        assert_eq!(
            config.ingest.queue_requests, 7,
            "the file still counts where nothing overrides it"
        );
        assert_eq!(config.money.rates.get("USD"), Some(&0.5));
        assert_eq!(config.console.trusted_proxies, ["127.0.0.1"]);
        let config = load(
            file,
            &env,
            &[
                "ingest.max_batch_bytes=3000",
                "database=postgres://u:pw@h/db",
            ],
        )
        .unwrap();
        assert_eq!(config.ingest.max_batch_bytes, 3000);
        assert!(matches!(config.location(), Location::Postgres { .. }));
        let shown = config.to_redacted_toml().unwrap();
        assert!(
            shown.contains("postgres://u:***@h/db") && !shown.contains("pw@"),
            "{shown}"
        );
        let err = load(file, &[("PROSSIMO_INGEST__MAX_BATCH_BYTES", "lots")], &[]).unwrap_err();
        assert!(
            err.to_string().contains("PROSSIMO_INGEST__MAX_BATCH_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn defaults_are_the_services_own() {
        let config = Settings::default();
        assert_eq!(
            config.limits().unwrap().max_batch_bytes,
            Limits::default().max_batch_bytes
        );
        assert_eq!(config.serve().unwrap(), ServeConfig::default());
        assert_eq!(
            config.dispatch().unwrap().retry,
            DispatchConfig::default().retry
        );
        assert_eq!(
            config.analyst().unwrap().refresh_every,
            AnalystConfig::default().refresh_every
        );
        assert_eq!(config.location(), Location::DataDir("prossimo-data".into()));
    }
}
