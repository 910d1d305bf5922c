use std::collections::{BTreeMap, BTreeSet, HashMap};

use prossimo_model::Message;
use serde::Serialize;

use crate::{Extracted, Identifier, IdentityConfig, ProfileId, ProfileState, TraitEntry, kinds};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// Two profiles became one.
    Merge,
    /// A merge or a link was refused by a per-kind limit.
    Refused,
    /// A value was refused as an identifier (placeholder, invalid).
    Ignored,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Merge => "merge",
            LogKind::Refused => "refused",
            LogKind::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<LogKind> {
        [LogKind::Merge, LogKind::Refused, LogKind::Ignored]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One line of the auditable identity log: which message did what, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub kind: LogKind,
    /// The surviving profile of a merge, or the profile the message went to.
    pub profile_id: ProfileId,
    /// The profile merged away, or the one a refused merge would have joined.
    pub other_profile_id: Option<ProfileId>,
    pub message_id: String,
    /// Event time of the message, milliseconds since the epoch.
    pub at: i64,
    pub detail: String,
}

/// Everything a batch changed, ready to be written in one transaction.
#[derive(Debug, Default)]
pub struct Changeset {
    /// Profiles that did not exist before this batch.
    pub created: BTreeSet<ProfileId>,
    /// Final state of every surviving profile the batch touched.
    pub profiles: Vec<ProfileState>,
    /// `(merged away, surviving root)` pairs.
    pub merged: Vec<(ProfileId, ProfileId)>,
    /// New identifiers with the root profile they belong to.
    pub new_identifiers: Vec<(Identifier, ProfileId)>,
    pub log: Vec<LogEntry>,
    parents: HashMap<ProfileId, ProfileId>,
}

impl Changeset {
    /// The surviving profile of `id` after every merge in the batch.
    pub fn root(&self, id: ProfileId) -> ProfileId {
        root_of(&self.parents, id)
    }
}

/// The part of the identity graph one batch can touch, plus the batch's effects so far.
///
/// The store must load, for every [`Extracted::lookup_keys`] of every message, the root
/// profile that owns the identifier (if any) and that root's [`ProfileState`].
pub struct Graph<'c> {
    config: &'c IdentityConfig,
    owners: HashMap<Identifier, ProfileId>,
    profiles: HashMap<ProfileId, ProfileState>,
    parents: HashMap<ProfileId, ProfileId>,
    next_id: ProfileId,
    created: BTreeSet<ProfileId>,
    touched: BTreeSet<ProfileId>,
    new_identifiers: Vec<Identifier>,
    merged: Vec<ProfileId>,
    log: Vec<LogEntry>,
}

impl<'c> Graph<'c> {
    /// `owners` maps identifiers to their root profile; `next_id` is the first free id.
    pub fn new(
        config: &'c IdentityConfig,
        owners: HashMap<Identifier, ProfileId>,
        profiles: impl IntoIterator<Item = ProfileState>,
        next_id: ProfileId,
    ) -> Self {
        Graph {
            config,
            owners,
            profiles: profiles.into_iter().map(|p| (p.id, p)).collect(),
            parents: HashMap::new(),
            next_id,
            created: BTreeSet::new(),
            touched: BTreeSet::new(),
            new_identifiers: Vec::new(),
            merged: Vec::new(),
            log: Vec::new(),
        }
    }

    fn root(&self, id: ProfileId) -> ProfileId {
        root_of(&self.parents, id)
    }

    fn owner(&self, id: &Identifier) -> Option<ProfileId> {
        self.owners.get(id).map(|&p| self.root(p))
    }

    fn create(&mut self) -> ProfileId {
        let id = self.next_id;
        self.next_id += 1;
        self.profiles.insert(id, ProfileState::new(id));
        self.created.insert(id);
        self.touched.insert(id);
        id
    }

    fn attach(&mut self, profile: ProfileId, id: Identifier) {
        if let Some(state) = self.profiles.get_mut(&profile) {
            *state.id_counts.entry(id.kind.clone()).or_default() += 1;
        }
        self.owners.insert(id.clone(), profile);
        self.new_identifiers.push(id);
        self.touched.insert(profile);
    }

    /// The kind whose limit a union of these profiles (plus extra identifiers) would break.
    fn limit_breach(&self, roots: &[ProfileId], extra: &[&Identifier]) -> Option<String> {
        let mut totals: BTreeMap<&str, u32> = BTreeMap::new();
        for root in roots {
            if let Some(state) = self.profiles.get(root) {
                for (kind, n) in &state.id_counts {
                    *totals.entry(kind.as_str()).or_default() += n;
                }
            }
        }
        for id in extra {
            *totals.entry(id.kind.as_str()).or_default() += 1;
        }
        totals.into_iter().find_map(|(kind, n)| {
            let limit = self.config.limit(kind);
            (n as usize > limit).then(|| format!("{n} {kind} values (limit {limit})"))
        })
    }

    fn merge(&mut self, loser: ProfileId, winner: ProfileId, message: &Message, why: &str) {
        if let Some(state) = self.profiles.remove(&loser)
            && let Some(target) = self.profiles.get_mut(&winner)
        {
            target.absorb(state);
        }
        self.parents.insert(loser, winner);
        self.merged.push(loser);
        self.touched.insert(winner);
        self.log.push(LogEntry {
            kind: LogKind::Merge,
            profile_id: winner,
            other_profile_id: Some(loser),
            message_id: message.message_id.clone(),
            at: message.timestamp.timestamp_millis(),
            detail: format!("linked by {why}"),
        });
    }

    fn note(
        &mut self,
        kind: LogKind,
        profile: ProfileId,
        other: Option<ProfileId>,
        m: &Message,
        detail: String,
    ) {
        self.log.push(LogEntry {
            kind,
            profile_id: profile,
            other_profile_id: other,
            message_id: m.message_id.clone(),
            at: m.timestamp.timestamp_millis(),
            detail,
        });
    }

    /// Resolves one message: links its identifiers, updates the profile's traits and
    /// first/last seen, and returns the profile the event belongs to.
    pub fn apply(&mut self, message: &Message, extracted: &Extracted) -> ProfileId {
        let mut linking = extracted.ids.clone();
        if let Some(previous) = &extracted.previous_id {
            let as_user = Identifier::new(kinds::USER_ID, previous.clone());
            let id = if self.owner(&as_user).is_some() {
                as_user
            } else {
                Identifier::new(kinds::ANONYMOUS_ID, previous.clone())
            };
            if !linking.contains(&id) {
                linking.push(id);
            }
        }
        linking.sort_by(|a, b| (a.priority(), a).cmp(&(b.priority(), b)));

        let mut roots: Vec<ProfileId> = Vec::new();
        let mut unknown: Vec<Identifier> = Vec::new();
        for id in &linking {
            match self.owner(id) {
                Some(root) if !roots.contains(&root) => roots.push(root),
                Some(_) => {}
                None => unknown.push(id.clone()),
            }
        }

        // Merge every profile the message links, unless a per-kind limit forbids it.
        if roots.len() > 1 {
            let mut sorted = roots.clone();
            sorted.sort_unstable();
            match self.limit_breach(&sorted, &[]) {
                None => {
                    let winner = sorted[0];
                    let why: Vec<String> = linking.iter().map(ToString::to_string).collect();
                    for &loser in &sorted[1..] {
                        self.merge(loser, winner, message, &why.join(", "));
                    }
                    roots = vec![winner];
                }
                Some(breach) => {
                    for &other in &roots[1..] {
                        self.note(
                            LogKind::Refused,
                            roots[0],
                            Some(other),
                            message,
                            format!("merge refused: the union would hold {breach}"),
                        );
                    }
                }
            }
        }

        // New identifiers join the most specific known profile, within its limits; the
        // ones that do not fit start a profile of their own.
        let mut homeless: Vec<Identifier> = Vec::new();
        match roots.first().copied() {
            None => homeless = unknown,
            Some(primary) => {
                for id in unknown {
                    if self.limit_breach(&[primary], &[&id]).is_none() {
                        self.attach(primary, id);
                    } else {
                        homeless.push(id);
                    }
                }
            }
        }
        if !homeless.is_empty() {
            let fresh = self.create();
            for id in homeless {
                if self.limit_breach(&[fresh], &[&id]).is_some() {
                    self.note(
                        LogKind::Refused,
                        fresh,
                        None,
                        message,
                        format!(
                            "{id} not linked: a message cannot carry more than {} {} values",
                            self.config.limit(&id.kind),
                            id.kind
                        ),
                    );
                    continue;
                }
                if let Some(&primary) = roots.first() {
                    let detail = format!(
                        "{id} not linked to profile {primary}: it would hold {}",
                        self.limit_breach(&[primary], &[&id]).unwrap_or_default()
                    );
                    self.note(LogKind::Refused, fresh, Some(primary), message, detail);
                }
                self.attach(fresh, id);
            }
        }

        // The event belongs to the profile of its most specific identifier.
        let target = linking
            .iter()
            .find_map(|id| self.owner(id))
            .unwrap_or_else(|| self.create());
        for (id, reason) in &extracted.ignored {
            self.note(
                LogKind::Ignored,
                target,
                None,
                message,
                format!("{id} ignored: {reason}"),
            );
        }
        let at = message.timestamp.timestamp_millis();
        // An event time may run ahead of our clock by the allowed skew; a profile was
        // still never seen later than we received it.
        let seen_at = at.min(message.received_at.timestamp_millis());
        if let Some(state) = self.profiles.get_mut(&target) {
            state.touch(seen_at, &message.message_id, message.channel);
            for (key, value) in message.person_traits() {
                state.set_trait(
                    key,
                    TraitEntry {
                        value: value.clone(),
                        at,
                        message_id: message.message_id.clone(),
                    },
                );
            }
            state.groups.extend(extracted.groups.iter().cloned());
        }
        self.touched.insert(target);
        target
    }

    /// What the batch changed. Profiles created and merged away within the batch still
    /// appear in `created` and `merged`, so the log's references stay valid.
    pub fn finish(self) -> Changeset {
        let roots: BTreeSet<ProfileId> = self.touched.iter().map(|&id| self.root(id)).collect();
        let mut profiles = self.profiles;
        let merged = self
            .merged
            .iter()
            .map(|&l| (l, root_of(&self.parents, l)))
            .collect();
        let new_identifiers = self
            .new_identifiers
            .into_iter()
            .filter_map(|id| {
                let owner = self.owners.get(&id).copied()?;
                Some((id, root_of(&self.parents, owner)))
            })
            .collect();
        Changeset {
            created: self.created,
            profiles: roots.iter().filter_map(|r| profiles.remove(r)).collect(),
            merged,
            new_identifiers,
            log: self.log,
            parents: self.parents,
        }
    }
}

fn root_of(parents: &HashMap<ProfileId, ProfileId>, mut id: ProfileId) -> ProfileId {
    while let Some(&p) = parents.get(&id) {
        id = p;
    }
    id
}

#[cfg(test)]
mod tests;
