//! Settings: command-line flag, then `PROSSIMO_*` environment variable (both through clap),
//! then `prossimo.toml`, then the default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::TimeDelta;
use prossimo_act::{DispatchConfig, TargetPolicy};
use prossimo_console::TrustedProxies;
use prossimo_identity::IdentityConfig;
use prossimo_model::{Limits, Money};
use prossimo_server::{AnalystConfig, PipelineConfig, ServeConfig};
use prossimo_store::{Location, StoreOptions};
use serde::Deserialize;

/// The contents of `prossimo.toml` (every key optional; see the commented example in the
/// repository root).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub listen: Option<String>,
    /// Where browsers reach the server (behind a proxy or TLS), for the SDK's settings.
    pub public_url: Option<String>,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub console: ConsoleSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub identity: IdentitySection,
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub money: MoneySection,
    #[serde(default)]
    pub analytics: AnalyticsSection,
    #[serde(default)]
    pub destinations: DestinationsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Longest wait for a request's headers, and for the next request on an idle
    /// keep-alive connection. Default: 30.
    pub header_read_timeout_seconds: Option<f64>,
    /// Longest time to receive a request's body. Default: 60.
    pub body_read_timeout_seconds: Option<f64>,
    /// Connections served at once; more wait to be accepted. Default: 4096.
    pub max_connections: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish. Default: 25.
    pub shutdown_grace_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// Reverse proxies in front of the server whose X-Forwarded-For names the client, as
    /// networks or addresses, e.g. ["127.0.0.1", "10.0.0.0/8"]. Default: none (the
    /// connection's address counts).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// How long a write waits for another writer's lock before failing with 503.
    /// Default: 10.
    pub lock_wait_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationsSection {
    /// Attempts in all before a delivery goes to the dead-letter list. Default: 8.
    pub max_attempts: Option<u32>,
    /// Wait before the first retry; each next one waits 4 times longer. Default: 10.
    pub first_retry_seconds: Option<f64>,
    /// The longest wait between retries. Default: 6.
    pub max_retry_hours: Option<f64>,
    /// Per request. Default: 10.
    pub timeout_seconds: Option<f64>,
    /// Private networks webhooks may reach anyway, e.g. ["10.20.0.0/16", "127.0.0.1"];
    /// loopback, private, link-local and metadata addresses are refused otherwise.
    #[serde(default)]
    pub allowed_private_networks: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSection {
    /// Hours between the server's full analysis runs; 0 runs them only on demand
    /// (`POST /v1/analytics/run`). Default: 24. A store not analysed for that long is
    /// analysed when the server starts.
    pub refresh_hours: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneySection {
    /// The reporting currency every order is converted into. Default: EUR.
    pub currency: Option<String>,
    /// Reporting-currency units per unit of another currency, e.g. `{ USD = 0.92 }`.
    /// An order in a currency without a rate is refused.
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
    /// The largest amount (`revenue`, `total`, `price`, `value`, refunds), positive or
    /// negative, a message may carry once converted; more is refused. Default: 1e9.
    pub max_amount: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Most identifiers of one kind a profile may hold, e.g. `{ user_id = 1, email = 5 }`.
    #[serde(default)]
    pub limits: BTreeMap<String, usize>,
    /// Extra placeholder values never used as identifiers.
    #[serde(default)]
    pub blocklist: Vec<String>,
    /// Default placeholder values that are real identifiers here, e.g. ["0"].
    #[serde(default)]
    pub allow: Vec<String>,
    /// Regular expressions; matching values are never used as identifiers.
    #[serde(default)]
    pub blocklist_patterns: Vec<String>,
    /// ISO country whose national phone numbers are normalised to E.164, e.g. "IT".
    pub phone_region: Option<String>,
    /// Traits whose values identify a person, e.g. ["loyalty_card"].
    #[serde(default)]
    pub trait_identifiers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    pub max_message_bytes: Option<usize>,
    pub max_batch_bytes: Option<usize>,
    pub max_batch_messages: Option<usize>,
    /// How many hours after its arrival an event time may lie before it is corrected to
    /// the arrival time. Default: 24.
    pub max_clock_skew_hours: Option<f64>,
    pub queue_requests: Option<usize>,
    pub max_group_messages: Option<usize>,
}

impl FileConfig {
    /// Reads the file named by `--config`, or `./prossimo.toml` when it exists.
    pub fn load(explicit: Option<&Path>) -> Result<FileConfig> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => {
                let default = PathBuf::from("prossimo.toml");
                if !default.exists() {
                    return Ok(FileConfig::default());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
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
        let money = Money::new(
            m.currency.as_deref().unwrap_or("EUR"),
            m.rates.iter().map(|(c, r)| (c.clone(), *r)),
        )
        .context("invalid [money] configuration")?;
        match m.max_amount {
            Some(max) => money
                .with_max_amount(max)
                .context("invalid [money] max_amount"),
            None => Ok(money),
        }
    }

    pub fn dispatch(&self) -> Result<DispatchConfig> {
        let d = &self.destinations;
        let mut config = DispatchConfig::default();
        let seconds = |name: &str, value: Option<f64>, default: Duration| -> Result<Duration> {
            match value {
                None => Ok(default),
                Some(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v)),
                Some(v) => anyhow::bail!("[destinations] {name} must be more than 0, not {v}"),
            }
        };
        if let Some(n) = d.max_attempts {
            if n == 0 {
                anyhow::bail!("[destinations] max_attempts must be at least 1");
            }
            config.retry.max_attempts = n;
        }
        config.retry.first_delay = seconds(
            "first_retry_seconds",
            d.first_retry_seconds,
            config.retry.first_delay,
        )?;
        config.retry.max_delay = seconds(
            "max_retry_hours",
            d.max_retry_hours.map(|h| h * 3600.0),
            config.retry.max_delay,
        )?;
        config.timeout = seconds("timeout_seconds", d.timeout_seconds, config.timeout)?;
        config.targets = std::sync::Arc::new(
            TargetPolicy::allowing(&d.allowed_private_networks)
                .map_err(|e| anyhow::anyhow!("[destinations] allowed_private_networks: {e}"))?,
        );
        Ok(config)
    }

    pub fn store_options(&self) -> Result<StoreOptions> {
        let mut options = StoreOptions::default();
        if let Some(seconds) = self.storage.lock_wait_seconds {
            if !(seconds.is_finite() && seconds > 0.0) {
                anyhow::bail!("[storage] lock_wait_seconds must be more than 0, not {seconds}");
            }
            options.lock_wait = Duration::from_secs_f64(seconds);
        }
        Ok(options)
    }

    pub fn analyst(&self) -> Result<AnalystConfig> {
        let hours = self.analytics.refresh_hours.unwrap_or(24.0);
        if !(hours.is_finite() && hours >= 0.0) {
            anyhow::bail!("[analytics] refresh_hours must be 0 or more hours, not {hours}");
        }
        Ok(AnalystConfig {
            refresh_every: (hours > 0.0).then(|| Duration::from_secs_f64(hours * 3600.0)),
        })
    }

    pub fn limits(&self) -> Result<Limits> {
        let d = Limits::default();
        let s = &self.ingest;
        if let Some(h) = s.max_clock_skew_hours
            && !(h.is_finite() && (0.0..=24.0 * 365.0).contains(&h))
        {
            anyhow::bail!("[ingest] max_clock_skew_hours must be between 0 and 8760, not {h}");
        }
        Ok(Limits {
            max_message_bytes: s.max_message_bytes.unwrap_or(d.max_message_bytes),
            max_batch_bytes: s.max_batch_bytes.unwrap_or(d.max_batch_bytes),
            max_batch_messages: s.max_batch_messages.unwrap_or(d.max_batch_messages),
            max_clock_skew: s.max_clock_skew_hours.map_or(d.max_clock_skew, |h| {
                TimeDelta::seconds((h * 3600.0) as i64)
            }),
        })
    }

    pub fn serve(&self) -> Result<ServeConfig> {
        let d = ServeConfig::default();
        let s = &self.server;
        let seconds = |name: &str, value: Option<f64>, default: Duration| -> Result<Duration> {
            match value {
                None => Ok(default),
                Some(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => {
                    Ok(Duration::from_secs_f64(v))
                }
                Some(v) => {
                    anyhow::bail!("[server] {name} must be between 0 and 3600 seconds, not {v}")
                }
            }
        };
        let max_connections = s.max_connections.unwrap_or(d.max_connections);
        if max_connections == 0 {
            anyhow::bail!("[server] max_connections must be at least 1");
        }
        Ok(ServeConfig {
            header_read_timeout: seconds(
                "header_read_timeout_seconds",
                s.header_read_timeout_seconds,
                d.header_read_timeout,
            )?,
            body_read_timeout: seconds(
                "body_read_timeout_seconds",
                s.body_read_timeout_seconds,
                d.body_read_timeout,
            )?,
            max_connections,
            shutdown_grace: seconds(
                "shutdown_grace_seconds",
                s.shutdown_grace_seconds,
                d.shutdown_grace,
            )?,
        })
    }

    pub fn trusted_proxies(&self) -> Result<TrustedProxies> {
        let networks = self
            .console
            .trusted_proxies
            .iter()
            .map(|raw| {
                raw.parse::<ipnet::IpNet>()
                    .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "[console] trusted_proxies: {raw:?} is not a network like 10.0.0.0/8 or an address"
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustedProxies(networks.into()))
    }

    pub fn pipeline(&self) -> PipelineConfig {
        let d = PipelineConfig::default();
        PipelineConfig {
            queue_requests: self.ingest.queue_requests.unwrap_or(d.queue_requests),
            max_group_messages: self
                .ingest
                .max_group_messages
                .unwrap_or(d.max_group_messages),
        }
    }

    /// Where the data lives: `--database` wins over `--data-dir`.
    pub fn location(&self, data_dir: Option<&Path>, database: Option<&str>) -> Location {
        if let Some(url) = database.or(self.database.as_deref()) {
            return Location::Postgres {
                url: url.to_owned(),
                schema: None,
            };
        }
        let dir = data_dir
            .map(Path::to_owned)
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("prossimo-data"));
        Location::DataDir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_in_the_repository_parses() {
        let text = include_str!("../../../prossimo.example.toml");
        let config: FileConfig = toml::from_str(text).unwrap();
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
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<FileConfig>("data_dri = \"x\"").is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let config: FileConfig = toml::from_str("data_dir = \"from-file\"").unwrap();
        assert_eq!(
            config.location(None, None),
            Location::DataDir("from-file".into())
        );
        assert_eq!(
            config.location(Some(Path::new("flag")), None),
            Location::DataDir("flag".into())
        );
        assert!(matches!(
            config.location(None, Some("postgres://x")),
            Location::Postgres { .. }
        ));
    }
}
