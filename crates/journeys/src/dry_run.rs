//! A dry run: what a journey's draft would do to an audience's members if they entered
//! now, before anyone does. Each member goes through the same state machine as in
//! production ([`advance`], with their facts from the store), up to where they would
//! first wait or end; nothing is written. Reported: how many would enter and why the
//! others would not, the steps they would take and which way, where they would wait and
//! how they would end, and for each send whether it would go or be skipped and why
//! (no address, suppressed, consent). Caps and quiet hours are left out: they depend on
//! when it goes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prossimo_decide::Conditions;
use prossimo_decide::audiences::Audiences;
use prossimo_messages::{Channel, ConsentRecord, Consents, Suppressions, address_of, allows};
use prossimo_store::{ProfileFacts, Store, StoreError};
use serde::Serialize;
use serde_json::Value;

use crate::entry::{EarlierInstance, EntryRefusal, may_enter};
use crate::instances::Instances;
use crate::machine::{Action, EventSeen, Facts, Input, Instance, Position, advance};
use crate::runner::uses;
use crate::service::{JourneyError, check_definition};
use crate::stored::Journeys;

/// At most this many members are run (the rest are counted).
pub const DRY_RUN_LIMIT: usize = 10_000;

/// What a send step would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SendForecast {
    pub would_go: u64,
    /// Why the others would be skipped.
    pub skipped: BTreeMap<String, u64>,
}

/// A dry run's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DryRun {
    /// The audience's members now.
    pub members: u64,
    /// How many were run (at most [`DRY_RUN_LIMIT`]).
    pub looked_at: u64,
    pub would_enter: u64,
    /// Why the others would not: `entry_condition`, `already_in`, `entered_before`,
    /// `cooling_down`.
    pub not_entering: BTreeMap<String, u64>,
    /// step → outcome → how many.
    pub steps: BTreeMap<String, BTreeMap<String, u64>>,
    /// Where they would first wait.
    pub waiting: BTreeMap<String, u64>,
    /// How those that end at once would end.
    pub ended: BTreeMap<String, u64>,
    /// Per send step.
    pub sends: BTreeMap<String, SendForecast>,
}

/// One member as the machine asks about them.
struct Member<'a> {
    holding: BTreeSet<String>,
    traits: &'a serde_json::Map<String, Value>,
    zone: chrono_tz::Tz,
}

impl Facts for Member<'_> {
    fn holds(&self, condition: &str) -> bool {
        self.holding.contains(condition)
    }

    /// No event comes in a dry run.
    fn passes(&self, _: &str, _: &EventSeen) -> bool {
        false
    }

    fn zone(&self) -> chrono_tz::Tz {
        prossimo_messages::person_zone(self.traits, self.zone)
    }

    fn date_trait(&self, name: &str) -> Option<i64> {
        let text = self.traits.get(name)?.as_str()?;
        prossimo_model::parse_timestamp(text)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

/// What `slug`'s draft would do to `audience`'s members entering at `now`, in `zone` (the
/// workspace's), with marketing needing opt-in when `require_opt_in`.
pub fn dry_run(
    store: &Store,
    slug: &str,
    audience: &str,
    now: i64,
    zone: chrono_tz::Tz,
    require_opt_in: bool,
) -> Result<DryRun, JourneyError> {
    let record = Journeys::of(store)?
        .get(slug)?
        .ok_or_else(|| StoreError::NotFound(format!("journey {slug:?}")))?;
    let journey = check_definition(store, &record.draft)?;
    let audiences = Audiences::of(store)?;
    let segment = audiences
        .segment(audience)?
        .ok_or_else(|| StoreError::NotFound(format!("audience {audience:?}")))?;
    let (mut conditions, mut filters) = (BTreeSet::new(), BTreeSet::new());
    uses(&journey, &mut conditions, &mut filters);
    let conditions = Conditions::new(store, conditions.iter().map(String::as_str))
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let (instances, consents, suppressions) = (
        Instances::of(store)?,
        Consents::of(store)?,
        Suppressions::of(store)?,
    );
    let mut report = DryRun::default();
    let mut after = None;
    loop {
        let page = audiences.segment_members(segment.id, after, 1_000)?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.position);
        report.members += page.len() as u64;
        let wanted: Vec<_> = page
            .iter()
            .take(DRY_RUN_LIMIT.saturating_sub(report.looked_at as usize))
            .map(|m| m.profile_id)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let people: HashMap<_, ProfileFacts> = store
            .profile_facts(&wanted)?
            .into_iter()
            .map(|f| (f.id, f))
            .collect();
        // What the sends of this page would be screened against, read once for it.
        let consent = consents.of_many(&people.values().map(|f| f.id).collect::<Vec<_>>())?;
        let addresses: Vec<(Channel, String)> = people
            .values()
            .flat_map(|f| {
                [Channel::Email, Channel::Sms]
                    .into_iter()
                    .filter_map(|c| Some((c, address_of(c, &f.traits, None)?)))
            })
            .collect();
        let listed = suppressions.suppressed(&addresses)?;
        for profile in wanted {
            report.looked_at += 1;
            let Some(facts) = people.get(&profile) else {
                continue;
            };
            let member = Member {
                holding: conditions
                    .holding_for(store, facts, now)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                traits: &facts.traits,
                zone,
            };
            if let Some(condition) = &journey.definition.entry.condition
                && !member.holds(condition)
            {
                *report
                    .not_entering
                    .entry("entry_condition".into())
                    .or_default() += 1;
                continue;
            }
            let earlier: Vec<EarlierInstance> = instances
                .of_profile(profile)?
                .into_iter()
                .filter(|i| i.journey_id == record.id)
                .map(|i| EarlierInstance {
                    key: i.instance.key.clone(),
                    entered_at: i.instance.entered_at,
                    active: !matches!(i.instance.position, Position::Ended { .. }),
                })
                .collect();
            if let Err(refusal) = may_enter(&journey, None, &earlier, now) {
                let why = match refusal {
                    EntryRefusal::AlreadyIn => "already_in",
                    EntryRefusal::EnteredBefore => "entered_before",
                    EntryRefusal::CoolingDown { .. } => "cooling_down",
                };
                *report.not_entering.entry(why.into()).or_default() += 1;
                continue;
            }
            report.would_enter += 1;
            let mut instance = Instance {
                id: format!("dry-run-{profile}"),
                key: None,
                entered_at: now,
                position: Position::Entering,
            };
            for action in advance(&journey, &mut instance, Input::Enter, now, &member) {
                match action {
                    Action::StepCompleted { step, outcome } => {
                        *report
                            .steps
                            .entry(step)
                            .or_default()
                            .entry(outcome)
                            .or_default() += 1;
                    }
                    Action::Send {
                        step,
                        channel,
                        topic,
                        transactional,
                        ..
                    } => {
                        let verdict = forecast(
                            consent.get(&facts.id).map_or(&[][..], Vec::as_slice),
                            &listed,
                            facts,
                            channel,
                            topic.as_deref(),
                            transactional,
                            require_opt_in,
                        );
                        let entry = report.sends.entry(step).or_default();
                        match verdict {
                            None => entry.would_go += 1,
                            Some(reason) => *entry.skipped.entry(reason).or_default() += 1,
                        }
                    }
                    Action::Ended { reason, .. } => {
                        *report.ended.entry(reason.as_str().into()).or_default() += 1;
                    }
                    Action::SetTrait { .. } | Action::Schedule { .. } => {}
                }
            }
            if let Position::Waiting { step, .. } = &instance.position {
                *report.waiting.entry(step.clone()).or_default() += 1;
            }
        }
    }
    Ok(report)
}

/// Why a send to `facts` would be skipped, if it would: no address, suppressed (its
/// address in `listed`), or `consent`. A national phone number is read with the
/// configured country only when sent, so it is not looked up on the list here.
fn forecast(
    consent: &[ConsentRecord],
    listed: &HashSet<(Channel, String)>,
    facts: &ProfileFacts,
    channel: Channel,
    topic: Option<&str>,
    transactional: bool,
    require_opt_in: bool,
) -> Option<String> {
    let trait_of = match channel {
        Channel::Email => Some("email"),
        Channel::Sms => Some("phone"),
        Channel::Webhook => None,
    };
    if let Some(name) = trait_of
        && !facts.traits.get(name).is_some_and(Value::is_string)
    {
        return Some("no_address".into());
    }
    if let Some(address) = address_of(channel, &facts.traits, None)
        && listed.contains(&(channel, address))
    {
        return Some("suppressed".into());
    }
    allows(consent, channel, topic, transactional, require_opt_in)
        .err()
        .map(|refusal| refusal.reason().to_owned())
}
