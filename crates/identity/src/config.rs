use std::collections::BTreeMap;

use regex::Regex;

use crate::kinds;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("identity.blocklist_patterns: {pattern:?} is not a valid regular expression: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("identity.phone_region: {0:?} is not an ISO 3166 country code (e.g. IT)")]
    BadRegion(String),
    #[error("identity.limits: the limit for {0} must be at least 1")]
    ZeroLimit(String),
}

/// How identifiers are linked. Defaults follow the policy: one `user_id` per person,
/// a few e-mails and phones, many anonymous devices.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    limits: BTreeMap<String, usize>,
    default_limit: usize,
    blocklist: Vec<String>,
    patterns: Vec<Regex>,
    phone_region: Option<phonenumber::country::Id>,
    trait_identifiers: Vec<String>,
}

/// Values that SDKs and forms send when they mean "nobody".
pub const DEFAULT_BLOCKLIST: [&str; 12] = [
    "null",
    "undefined",
    "anonymous",
    "0",
    "-1",
    "none",
    "nil",
    "unknown",
    "n/a",
    "na",
    "[object object]",
    "test@test.com",
];

impl Default for IdentityConfig {
    fn default() -> Self {
        let limits = [
            (kinds::USER_ID, 1),
            (kinds::EMAIL, 5),
            (kinds::PHONE, 5),
            (kinds::ANONYMOUS_ID, 100),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        IdentityConfig {
            limits,
            default_limit: 5,
            blocklist: DEFAULT_BLOCKLIST.iter().map(|s| s.to_string()).collect(),
            patterns: Vec::new(),
            phone_region: None,
            trait_identifiers: Vec::new(),
        }
    }
}

impl IdentityConfig {
    /// Overrides the limit for one identifier kind.
    pub fn with_limit(mut self, kind: &str, limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::ZeroLimit(kind.to_owned()));
        }
        self.limits.insert(kind.to_owned(), limit);
        Ok(self)
    }

    /// Adds junk values (compared case-insensitively after trimming).
    pub fn with_blocked_values<I: IntoIterator<Item = String>>(mut self, values: I) -> Self {
        self.blocklist
            .extend(values.into_iter().map(|v| v.trim().to_lowercase()));
        self
    }

    /// Removes values from the junk list, e.g. "0" where customer number 0 is a real
    /// customer (compared case-insensitively after trimming).
    pub fn with_allowed_values<I: IntoIterator<Item = String>>(mut self, values: I) -> Self {
        for value in values {
            let value = value.trim().to_lowercase();
            self.blocklist.retain(|v| *v != value);
        }
        self
    }

    /// Adds regular expressions; a value matching any of them is junk.
    pub fn with_blocked_patterns<I: IntoIterator<Item = String>>(
        mut self,
        patterns: I,
    ) -> Result<Self, ConfigError> {
        for pattern in patterns {
            let re = Regex::new(&pattern)
                .map_err(|source| ConfigError::BadPattern { pattern, source })?;
            self.patterns.push(re);
        }
        Ok(self)
    }

    /// Phone numbers without an international prefix are read as numbers of this country.
    pub fn with_phone_region(mut self, region: &str) -> Result<Self, ConfigError> {
        let id = region
            .trim()
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .map_err(|_| ConfigError::BadRegion(region.to_owned()))?;
        self.phone_region = Some(id);
        Ok(self)
    }

    /// Traits whose values identify a person (a loyalty card number, a CRM id).
    pub fn with_trait_identifiers<I: IntoIterator<Item = String>>(mut self, traits: I) -> Self {
        self.trait_identifiers.extend(traits);
        self
    }

    pub fn limit(&self, kind: &str) -> usize {
        self.limits.get(kind).copied().unwrap_or(self.default_limit)
    }

    pub fn phone_region(&self) -> Option<phonenumber::country::Id> {
        self.phone_region
    }

    pub fn trait_identifiers(&self) -> &[String] {
        &self.trait_identifiers
    }

    /// Why a normalised value cannot identify anybody, if it cannot.
    pub fn junk_reason(&self, value: &str) -> Option<String> {
        let lowered = value.trim().to_lowercase();
        if lowered.is_empty() {
            return Some("empty value".into());
        }
        if self.blocklist.contains(&lowered) {
            return Some(format!("{value:?} is a placeholder value"));
        }
        self.patterns
            .iter()
            .find(|p| p.is_match(value))
            .map(|p| format!("{value:?} matches the blocked pattern {:?}", p.as_str()))
    }
}
