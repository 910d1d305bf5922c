use std::collections::{BTreeMap, BTreeSet};

use prossimo_model::Channel;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub type ProfileId = i64;

/// A trait value with the event that set it; the value with the latest event time wins,
/// ties broken by message id, so arrival order never matters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraitEntry {
    #[serde(rename = "v")]
    pub value: Value,
    /// Event time, milliseconds since the epoch.
    #[serde(rename = "t")]
    pub at: i64,
    #[serde(rename = "m")]
    pub message_id: String,
}

impl TraitEntry {
    fn is_newer_than(&self, other: &TraitEntry) -> bool {
        (self.at, &self.message_id) > (other.at, &other.message_id)
    }
}

/// The earliest touchpoint of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub at: i64,
    pub message_id: String,
    pub channel: Channel,
}

/// What identity resolution keeps per profile. Counts, timelines and revenue are read from
/// the event log, not kept here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProfileState {
    pub id: ProfileId,
    pub traits: BTreeMap<String, TraitEntry>,
    pub first_seen: Option<Seen>,
    pub last_seen: Option<i64>,
    /// How many identifiers of each kind the profile holds (for the per-kind limits).
    pub id_counts: BTreeMap<String, u32>,
    /// Groups (accounts) this person belongs to.
    pub groups: BTreeSet<String>,
}

impl ProfileState {
    pub fn new(id: ProfileId) -> Self {
        ProfileState {
            id,
            ..ProfileState::default()
        }
    }

    pub fn count(&self, kind: &str) -> u32 {
        self.id_counts.get(kind).copied().unwrap_or(0)
    }

    /// Records one touchpoint: first/last seen.
    pub fn touch(&mut self, at: i64, message_id: &str, channel: Channel) {
        let candidate = Seen {
            at,
            message_id: message_id.to_owned(),
            channel,
        };
        let earlier = self
            .first_seen
            .as_ref()
            .is_none_or(|s| (at, message_id) < (s.at, s.message_id.as_str()));
        if earlier {
            self.first_seen = Some(candidate);
        }
        self.last_seen = Some(self.last_seen.map_or(at, |l| l.max(at)));
    }

    pub fn set_trait(&mut self, key: &str, entry: TraitEntry) {
        match self.traits.get(key) {
            Some(existing) if !entry.is_newer_than(existing) => {}
            _ => {
                self.traits.insert(key.to_owned(), entry);
            }
        }
    }

    /// Folds another profile into this one (a merge): per trait the newest value, the
    /// earliest first touchpoint, the latest last one, the sum of identifier counts.
    pub fn absorb(&mut self, other: ProfileState) {
        for (key, entry) in other.traits {
            self.set_trait(&key, entry);
        }
        if let Some(seen) = other.first_seen {
            self.touch(seen.at, &seen.message_id, seen.channel);
        }
        if let Some(last) = other.last_seen {
            self.last_seen = Some(self.last_seen.map_or(last, |l| l.max(last)));
        }
        for (kind, n) in other.id_counts {
            *self.id_counts.entry(kind).or_default() += n;
        }
        self.groups.extend(other.groups);
    }

    /// The person's name as traits give it, for search and display.
    pub fn display_name(&self) -> Option<String> {
        let get = |k: &str| {
            self.traits
                .get(k)
                .and_then(|t| t.value.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        if let Some(name) = get("name") {
            return Some(name.to_owned());
        }
        let first = get("first_name").or_else(|| get("firstName"));
        let last = get("last_name").or_else(|| get("lastName"));
        match (first, last) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        }
    }

    /// Traits as a plain JSON object, the way the read API shows them.
    pub fn trait_values(&self) -> serde_json::Map<String, Value> {
        self.traits
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }
}
