//! The incremental audience engine: in-memory per-profile aggregates and memberships,
//! advanced one step at a time from the store's logs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use prossimo_act::NewDelivery;
use prossimo_bus::MembershipChange;
use prossimo_identity::ProfileId;
use prossimo_segments::{
    Catalog, Change, EventFacts, ProfileAggregates, ProfileView, SegmentId, SegmentSet, Source,
};
use prossimo_store::sql::Conn;
use prossimo_store::{EventScan, LogPosition, LoggedEvent, ProfileFacts, Store, StoreError};
use rayon::prelude::*;
use serde_json::Map;

use crate::audiences::{
    Audiences, DecideWrite, OwedWrite, SEGMENT_ENTERED, SEGMENT_EXITED, SegmentRecord,
    membership_event,
};
use crate::routing::Routes;
use prossimo_model::Clock;

use crate::{DecideError, schema};

/// Membership changes written per transaction, each chunk with its own webhooks, so
/// ingestion waits for the store's write lock at most one chunk when a rebuild writes
/// millions. Smaller (2,000) bounded ingestion's wait better but cost the decider a commit
/// and a wait for the lock per chunk, and it fell behind at 10,000 events/s (BENCHMARKS.md).
const CHANGES_PER_TRANSACTION: usize = 10_000;

/// Profiles evaluated together on every core during a full re-evaluation.
const EVALUATION_CHUNK: usize = 8_192;

/// One profile's full evaluation: its changes, and its state when there is any to keep.
struct Evaluated {
    profile: ProfileId,
    changes: Vec<MembershipChange>,
    /// For the webhooks of its changes.
    traits: Option<Map<String, serde_json::Value>>,
    kept: Option<(SegmentSet, Option<i64>)>,
}

/// A step's writes, computed but not yet stored: its membership changes a chunk per
/// transaction, each chunk with the deliveries it owes; the sizes and the read position
/// with the last chunk.
#[derive(Debug, Default)]
pub struct PendingWrite {
    changes: Vec<MembershipChange>,
    /// Where each chunk ends in `changes`, and its deliveries.
    chunks: Vec<(usize, Vec<NewDelivery>)>,
    sizes: Vec<(i64, u64)>,
    position: Option<LogPosition>,
}

impl PendingWrite {
    /// Writes every chunk in order.
    pub fn write(&self, store: &Store) -> Result<(), DecideError> {
        self.write_then(store, &mut |_, _| {})
    }

    /// Writes every chunk in order; after each commit, `written` gets how many of the
    /// changes are now stored and the chunk's deliveries (the dispatcher's wake-up need not
    /// wait for the rest of the step).
    pub fn write_then(
        &self,
        store: &Store,
        written: &mut dyn FnMut(usize, usize),
    ) -> Result<(), DecideError> {
        let mut start = 0;
        for (i, (end, deliveries)) in self.chunks.iter().enumerate() {
            let last = i + 1 == self.chunks.len();
            let enqueue = |conn: &mut dyn Conn, now| prossimo_act::enqueue(conn, deliveries, now);
            Audiences::of(store)?.write_decisions(&DecideWrite {
                changes: &self.changes[start..*end],
                owed: (!deliveries.is_empty()).then_some(&enqueue as OwedWrite<'_>),
                sizes: if last { &self.sizes } else { &[] },
                position: if last { self.position } else { None },
            })?;
            written(*end, deliveries.len());
            start = *end;
        }
        Ok(())
    }

    /// Writes, then hands the changes to the report.
    pub fn write_into(
        self,
        store: &Store,
        mut report: StepReport,
    ) -> Result<StepReport, DecideError> {
        self.write(store)?;
        report.changes = self.changes;
        Ok(report)
    }

    pub fn deliveries(&self) -> usize {
        self.chunks.iter().map(|(_, d)| d.len()).sum()
    }

    pub fn into_changes(self) -> Vec<MembershipChange> {
        self.changes
    }
}

/// What the engine keeps per profile (only for profiles with something to keep).
#[derive(Debug, Default)]
struct Entry {
    aggregates: ProfileAggregates,
    members: SegmentSet,
    boundary: Option<i64>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.aggregates.is_empty() && self.members.is_empty() && self.boundary.is_none()
    }
}

/// What one [`Engine::step`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    pub events: usize,
    pub merges: usize,
    /// Profiles re-evaluated.
    pub evaluated: usize,
    pub changes: Vec<MembershipChange>,
    pub deliveries: usize,
}

impl StepReport {
    pub fn is_idle(&self) -> bool {
        self.events == 0 && self.merges == 0 && self.evaluated == 0
    }
}

/// Why a profile is re-evaluated in a step.
#[derive(Default)]
struct Pending {
    change: Change,
    /// Every segment, not just those the change can affect (a boundary passed, a merge).
    all: bool,
}

pub struct Engine {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    catalog: Catalog,
    /// The saved segments, in catalog order (`SegmentId::index`).
    segments: Vec<SegmentRecord>,
    /// Every stored segment at the last load (including any left out of the catalog).
    saved: Vec<SegmentRecord>,
    routes: Routes,
    profiles: HashMap<ProfileId, Entry>,
    /// Profiles to re-evaluate at an instant, by that instant.
    schedule: BTreeSet<(i64, ProfileId)>,
    sizes: Vec<u64>,
    position: LogPosition,
    /// The clock never goes backwards for the aggregates.
    now: i64,
    /// Some term counts the platform's own `Segment Entered` / `Segment Exited` events.
    reads_own_events: bool,
    /// Own events of the last write, observed by the next step (as if read back).
    echo: Vec<LoggedEvent>,
    /// Profiles whose computed traits changed since the last step.
    computed_dirty: HashSet<ProfileId>,
    /// A full analysis rewrote everyone's computed traits.
    all_computed_dirty: bool,
}

impl Engine {
    /// Loads the saved segments and destinations and rebuilds the state from the stored
    /// events, reconciling the stored memberships with it.
    pub fn open(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Engine, DecideError> {
        let saved = Audiences::of(&store)?.segments()?;
        let (catalog, segments) = load_catalog(saved.clone())?;
        let reads_own_events = reads_own_events(&catalog);
        let routes = Routes::load(&store)?;
        let now = clock.now_ms();
        let mut engine = Engine {
            store,
            clock,
            sizes: vec![0; segments.len()],
            catalog,
            segments,
            saved,
            routes,
            profiles: HashMap::new(),
            schedule: BTreeSet::new(),
            position: LogPosition::default(),
            now,
            reads_own_events,
            echo: Vec::new(),
            computed_dirty: HashSet::new(),
            all_computed_dirty: false,
        };
        engine.rebuild()?;
        Ok(engine)
    }

    /// Reloads segments (rebuilding when they changed) and destinations; true when the
    /// segments changed.
    /// `before_rebuild` runs first when there is one (it can take a while).
    pub fn reload(&mut self, before_rebuild: &mut dyn FnMut()) -> Result<bool, DecideError> {
        self.routes = Routes::load(&self.store)?;
        // Compared with what was stored at the last load, not with the catalog: a saved
        // definition left out of it must not look like a change every time.
        let stored = self.audiences()?.segments()?;
        if stored == self.saved {
            return Ok(false);
        }
        before_rebuild();
        let (catalog, segments) = load_catalog(stored.clone())?;
        self.saved = stored;
        self.reads_own_events = reads_own_events(&catalog);
        self.catalog = catalog;
        self.sizes = vec![0; segments.len()];
        self.segments = segments;
        self.rebuild()?;
        Ok(true)
    }

    /// Notes that analyses rewrote computed traits: of these profiles, or (`None`) of all.
    pub fn computed_changed(&mut self, profiles: Option<&[ProfileId]>) {
        match profiles {
            None => self.all_computed_dirty = true,
            Some(ids) => self.computed_dirty.extend(ids.iter().copied()),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The earliest instant a profile is due for re-evaluation by time alone.
    pub fn next_boundary(&self) -> Option<i64> {
        self.schedule.first().map(|&(at, _)| at)
    }

    /// Profiles currently held in memory (with aggregates, memberships or a boundary).
    pub fn tracked_profiles(&self) -> usize {
        self.profiles.len()
    }

    /// The current members of every segment, by slug (for tests and recompute checks).
    pub fn memberships(&self) -> HashMap<String, BTreeSet<ProfileId>> {
        let mut out: HashMap<String, BTreeSet<ProfileId>> = self
            .segments
            .iter()
            .map(|s| (s.slug.clone(), BTreeSet::new()))
            .collect();
        for (&profile, entry) in &self.profiles {
            for id in entry.members.iter() {
                if let Some(s) = self.segments.get(id.index()) {
                    out.entry(s.slug.clone()).or_default().insert(profile);
                }
            }
        }
        out
    }

    fn audiences(&self) -> Result<Audiences<'_>, StoreError> {
        Audiences::of(&self.store)
    }

    fn tick(&mut self) -> i64 {
        self.now = self.now.max(self.clock.now_ms());
        self.now
    }

    /// Rebuilds every profile's aggregates from the stored events, evaluates every
    /// segment for every profile and writes the difference with the stored memberships.
    pub fn rebuild(&mut self) -> Result<StepReport, DecideError> {
        let now = self.tick();
        let head = self.store.log_heads()?;
        let saved = self.audiences()?.decide_position()?;
        self.profiles.clear();
        self.schedule.clear();
        self.echo.clear();

        if !self.catalog.terms().is_empty() {
            let terms = TermScan::of(&self.catalog, now);
            let (catalog, profiles) = (&self.catalog, &mut self.profiles);
            let mut observe = |e: LoggedEvent| {
                let entry = profiles.entry(e.profile_id).or_default();
                entry.aggregates.observe(catalog, &facts(&e), now);
                Ok(())
            };
            self.store
                .scan_events(&terms.scan(head.event_seq), &mut observe)?;
            if self.reads_own_events {
                Audiences::of(&self.store)?.scan_membership_events(terms.since_ts, &mut observe)?;
            }
        }
        // What is stored is what the evaluation is compared with: the log's changes in
        // order, the last of each pair winning.
        let by_db_id: HashMap<i64, SegmentId> = self
            .segments
            .iter()
            .filter_map(|s| self.catalog.id(&s.slug).map(|id| (s.id, id)))
            .collect();
        let profiles = &mut self.profiles;
        Audiences::of(&self.store)?.for_each_membership_change(
            &mut |segment, profile, entered| {
                if let Some(&id) = by_db_id.get(&segment) {
                    let members = &mut profiles.entry(profile).or_default().members;
                    if entered {
                        members.insert(id);
                    } else {
                        members.remove(id);
                    }
                }
            },
        )?;

        let mut deliveries = Vec::new();
        // Events stored while the engine was down are still owed to event destinations
        // (never history from before the first run).
        if self.routes.has_event_routes() && saved.event_seq > 0 {
            let mut from = saved.event_seq;
            while from < head.event_seq {
                let batch = self.store.events_after(from)?;
                let Some(last) = batch.last() else { break };
                from = last.seq;
                for e in batch.iter().filter(|e| e.seq <= head.event_seq) {
                    self.routes.for_event(e, &mut deliveries);
                }
            }
        }
        // A segment never evaluated before (no size recorded) gets its first members
        // without timeline events.
        let mut first_fill = Vec::with_capacity(self.segments.len());
        let audiences = self.audiences()?;
        for segment in &self.segments {
            first_fill.push(audiences.segment_sizes(segment.id)?.is_empty());
        }
        let (report, pending) = self.reevaluate_everyone(now, head, deliveries, &first_fill)?;
        let report = pending.write_into(&self.store, report)?;
        self.position = head;
        self.computed_dirty.clear();
        self.all_computed_dirty = false;
        Ok(report)
    }

    /// Evaluates every segment for every profile with the aggregates in memory, compares
    /// with the memberships in memory, and writes the changes (in chunks) with `position`.
    fn reevaluate_everyone(
        &mut self,
        now: i64,
        position: LogPosition,
        deliveries: Vec<NewDelivery>,
        first_fill: &[bool],
    ) -> Result<(StepReport, PendingWrite), DecideError> {
        let mut changes = Vec::new();
        let mut traits_of: HashMap<ProfileId, Map<String, serde_json::Value>> = HashMap::new();
        let mut results: Vec<(ProfileId, SegmentSet, Option<i64>)> = Vec::new();
        let mut roots: HashSet<ProfileId> = HashSet::with_capacity(self.profiles.len());
        let wants_traits = self.routes.has_segment_routes();
        {
            let (catalog, profiles, segments) = (&self.catalog, &self.profiles, &self.segments);
            // Profiles are read in one stream and evaluated a chunk at a time on every
            // core: evaluating every segment for every profile is the CPU-bound part.
            let evaluate = |chunk: &[ProfileFacts]| -> Vec<Evaluated> {
                let (empty, none) = (ProfileAggregates::new(), SegmentSet::new());
                chunk
                    .par_iter()
                    .map(|f| {
                        let entry = profiles.get(&f.id);
                        let previous = entry.map_or(&none, |e| &e.members);
                        let view = view_of(f, entry.map_or(&empty, |e| &e.aggregates), &none);
                        let result = catalog.evaluate(&view, now, None);
                        let boundary = view.next_boundary(catalog, now);
                        let mut changes = Vec::new();
                        for (set, other, entered) in [
                            (&result.members, previous, true),
                            (previous, &result.members, false),
                        ] {
                            for id in set.iter().filter(|id| !other.contains(*id)) {
                                let mut change =
                                    membership_change(segments, id, f.id, entered, now);
                                change.first_fill = first_fill.get(id.index()) == Some(&true);
                                changes.push(change);
                            }
                        }
                        let keep =
                            entry.is_some() || !result.members.is_empty() || boundary.is_some();
                        Evaluated {
                            profile: f.id,
                            traits: (wants_traits && !changes.is_empty()).then(|| f.traits.clone()),
                            changes,
                            kept: keep.then_some((result.members, boundary)),
                        }
                    })
                    .collect()
            };
            let mut take = |evaluated: Vec<Evaluated>| {
                for e in evaluated {
                    changes.extend(e.changes);
                    if let Some(traits) = e.traits {
                        traits_of.insert(e.profile, traits);
                    }
                    if let Some((members, boundary)) = e.kept {
                        results.push((e.profile, members, boundary));
                    }
                    roots.insert(e.profile);
                }
            };
            let mut chunk = Vec::with_capacity(EVALUATION_CHUNK);
            self.store.for_each_profile_facts(&mut |f| {
                chunk.push(f);
                if chunk.len() == EVALUATION_CHUNK {
                    take(evaluate(&chunk));
                    chunk.clear();
                }
                Ok(())
            })?;
            take(evaluate(&chunk));
        }
        // Profiles that are no longer roots (merged away) leave every segment.
        for (&profile, entry) in &self.profiles {
            if !roots.contains(&profile) {
                for id in entry.members.iter() {
                    changes.push(membership_change(&self.segments, id, profile, false, now));
                }
            }
        }
        self.profiles.retain(|profile, _| roots.contains(profile));
        self.schedule.clear();
        for (profile, members, boundary) in results {
            let entry = self.profiles.entry(profile).or_default();
            entry.members = members;
            entry.boundary = boundary;
            if let Some(at) = boundary {
                self.schedule.insert((at, profile));
            }
        }
        self.profiles.retain(|_, e| !e.is_empty());
        self.sizes = vec![0; self.segments.len()];
        for entry in self.profiles.values() {
            for id in entry.members.iter() {
                if let Some(size) = self.sizes.get_mut(id.index()) {
                    *size += 1;
                }
            }
        }
        changes.sort_by_key(|c| (c.profile_id, c.segment_id, c.entered));
        let sizes: Vec<(i64, u64)> = self
            .segments
            .iter()
            .zip(&self.sizes)
            .map(|(s, &n)| (s.id, n))
            .collect();
        let pending = self.plan_write(changes, &traits_of, deliveries, sizes, position);
        self.echo_own_events(&pending.changes);
        let report = StepReport {
            evaluated: roots.len(),
            deliveries: pending.deliveries(),
            ..StepReport::default()
        };
        Ok((report, pending))
    }

    /// Reads what was stored since the last step (up to a few thousand events), applies
    /// it, re-evaluates the profiles it can change and those whose boundary has come, and
    /// writes the changes. Call until [`StepReport::is_idle`].
    pub fn step(&mut self) -> Result<StepReport, DecideError> {
        let (report, pending) = self.prepare_step()?;
        pending.write_into(&self.store, report)
    }

    /// [`Engine::step`] without the write: the engine's memory moves on as if the returned
    /// write succeeded, so the next step can be computed while it is being written (the
    /// decider thread hands it to its writer). Writes must be applied in order; after one
    /// fails, the engine must [`Engine::rebuild`] before anything else. The report's
    /// changes are in the write.
    pub fn prepare_step(&mut self) -> Result<(StepReport, PendingWrite), DecideError> {
        if self.all_computed_dirty {
            // A full analysis rewrote everyone's computed traits: every profile again, with
            // the aggregates as they are.
            self.all_computed_dirty = false;
            self.computed_dirty.clear();
            let now = self.tick();
            return self.reevaluate_everyone(now, self.position, Vec::new(), &[]);
        }
        let now = self.tick();
        let events = self.store.events_after(self.position.event_seq)?;
        let merges = self.store.merges_after(self.position.log_id)?;
        let own = std::mem::take(&mut self.echo);
        let mut report = StepReport {
            events: events.len() + own.len(),
            merges: merges.len(),
            ..StepReport::default()
        };
        let mut pending: HashMap<ProfileId, Pending> = HashMap::new();
        let mut deliveries = Vec::new();

        for (e, customers) in own
            .iter()
            .map(|e| (e, false))
            .chain(events.iter().map(|e| (e, true)))
        {
            let f = facts(e);
            let terms: Vec<_> = self.catalog.matching_terms(&f).collect();
            if !terms.is_empty() {
                self.profiles
                    .entry(e.profile_id)
                    .or_default()
                    .aggregates
                    .observe(&self.catalog, &f, now);
            }
            let p = pending.entry(e.profile_id).or_default();
            p.change.terms.extend(terms);
            p.change.traits.extend(e.trait_keys.iter().cloned());
            // Event destinations and `last_seen` are about what customers did.
            if customers {
                p.change.seen = true;
                self.routes.for_event(e, &mut deliveries);
            }
        }
        let last_seq = events.last().map_or(self.position.event_seq, |e| e.seq);

        let mut changes = Vec::new();
        for m in &merges {
            // The merged-away profile no longer exists: it leaves its segments.
            if let Some(entry) = self.profiles.remove(&m.loser) {
                for id in entry.members.iter() {
                    changes.push(membership_change(&self.segments, id, m.loser, false, now));
                    if let Some(size) = self.sizes.get_mut(id.index()) {
                        *size = size.saturating_sub(1);
                    }
                }
                if let Some(at) = entry.boundary {
                    self.schedule.remove(&(at, m.loser));
                }
            }
            pending.remove(&m.loser);
            pending.entry(m.root).or_default().all = true;
        }
        // A merged profile's aggregates are rebuilt from its whole history as read so far.
        let merged_roots: BTreeSet<ProfileId> = merges.iter().map(|m| m.root).collect();
        for &root in &merged_roots {
            let mut history: Vec<LoggedEvent> = self
                .store
                .events_of(root)?
                .into_iter()
                .filter(|e| e.seq <= last_seq)
                .collect();
            if self.reads_own_events {
                history.extend(self.audiences()?.membership_events_of(root)?);
            }
            let mut aggregates = ProfileAggregates::new();
            for e in &history {
                aggregates.observe(&self.catalog, &facts(e), now);
            }
            self.profiles.entry(root).or_default().aggregates = aggregates;
        }

        while let Some(&(at, profile)) = self.schedule.first() {
            if at > now {
                break;
            }
            self.schedule.pop_first();
            if let Some(entry) = self.profiles.get_mut(&profile) {
                entry.boundary = None;
            }
            pending.entry(profile).or_default().all = true;
        }
        if !self.computed_dirty.is_empty() {
            let names: Vec<String> = schema().names().map(str::to_owned).collect();
            for profile in std::mem::take(&mut self.computed_dirty) {
                pending
                    .entry(profile)
                    .or_default()
                    .change
                    .computed
                    .clone_from(&names);
            }
        }

        let ids: Vec<ProfileId> = pending.keys().copied().collect();
        let facts_of = self.store.profile_facts(&ids)?;
        let wants_traits = self.routes.has_segment_routes();
        let mut traits_of: HashMap<ProfileId, Map<String, serde_json::Value>> = HashMap::new();
        for f in &facts_of {
            let Some(p) = pending.get(&f.id) else {
                continue;
            };
            let affected = (!p.all).then(|| self.catalog.affected(&p.change));
            if affected.as_ref().is_some_and(SegmentSet::is_empty) {
                continue;
            }
            report.evaluated += 1;
            let entry = self.profiles.entry(f.id).or_default();
            entry.aggregates.prune(&self.catalog, now);
            let view = view_of(f, &entry.aggregates, &entry.members);
            let result = self.catalog.evaluate(&view, now, affected.as_ref());
            let boundary = view.next_boundary(&self.catalog, now);
            for id in result.evaluated.iter() {
                let (was, is) = (entry.members.contains(id), result.members.contains(id));
                if was != is {
                    changes.push(membership_change(&self.segments, id, f.id, is, now));
                    if let Some(size) = self.sizes.get_mut(id.index()) {
                        *size = if is {
                            *size + 1
                        } else {
                            size.saturating_sub(1)
                        };
                    }
                    if wants_traits {
                        traits_of.entry(f.id).or_insert_with(|| f.traits.clone());
                    }
                }
            }
            entry.members = result.members;
            if let Some(old) = entry.boundary.take() {
                self.schedule.remove(&(old, f.id));
            }
            entry.boundary = boundary;
            if let Some(at) = boundary {
                self.schedule.insert((at, f.id));
            }
            if entry.is_empty() {
                self.profiles.remove(&f.id);
            }
        }

        let touched: BTreeSet<i64> = changes.iter().map(|c| c.segment_id).collect();
        let sizes: Vec<(i64, u64)> = self
            .segments
            .iter()
            .zip(&self.sizes)
            .filter(|(s, _)| touched.contains(&s.id))
            .map(|(s, &n)| (s.id, n))
            .collect();
        let position = LogPosition {
            event_seq: last_seq,
            log_id: merges.last().map_or(self.position.log_id, |m| m.log_id),
        };
        let write = if position != self.position || !changes.is_empty() || !deliveries.is_empty() {
            self.plan_write(changes, &traits_of, deliveries, sizes, position)
        } else {
            PendingWrite::default()
        };
        report.deliveries = write.deliveries();
        self.position = position;
        self.echo_own_events(&write.changes);
        Ok((report, write))
    }

    /// Plans the writes of changes a chunk per transaction, each with the webhooks it owes
    /// (so a chunk written before a failure has its deliveries; the runner then rebuilds,
    /// which only writes what is still missing). The events' deliveries, the sizes and the
    /// position go with the last chunk: until then the events are read again.
    ///
    /// A step that fits in one chunk and owes webhooks for some of its changes writes
    /// those changes and their webhooks first, in a transaction of their own, and the rest
    /// after: the webhooks then wait for a few rows instead of all of the step's (at
    /// 10,000 events/s a step changes hundreds of memberships). Each of a segment's changes
    /// stays in one of the two, so a profile's changes of a segment keep their order; a
    /// failure between the two is made good like any other (the rebuild writes what is
    /// missing, and on start `Engine::open` reconciles with the stored log).
    fn plan_write(
        &self,
        mut changes: Vec<MembershipChange>,
        traits_of: &HashMap<ProfileId, Map<String, serde_json::Value>>,
        event_deliveries: Vec<NewDelivery>,
        sizes: Vec<(i64, u64)>,
        position: LogPosition,
    ) -> PendingWrite {
        let mut chunks = Vec::new();
        let owed = |change: &MembershipChange| {
            let mut deliveries = Vec::new();
            self.routes
                .for_change(change, traits_of.get(&change.profile_id), &mut deliveries);
            deliveries
        };
        if changes.len() <= CHANGES_PER_TRANSACTION {
            let (mut first, mut rest) = (Vec::new(), Vec::new());
            let mut deliveries = Vec::new();
            for change in changes {
                let owes = owed(&change);
                if owes.is_empty() {
                    rest.push(change);
                } else {
                    deliveries.extend(owes);
                    first.push(change);
                }
            }
            let routed = first.len();
            first.append(&mut rest);
            changes = first;
            if routed > 0 {
                chunks.push((routed, deliveries));
            }
            if routed == 0 || routed < changes.len() {
                chunks.push((changes.len(), Vec::new()));
            }
        } else {
            let mut start = 0;
            while start < changes.len() {
                let end = (start + CHANGES_PER_TRANSACTION).min(changes.len());
                let deliveries = changes[start..end].iter().flat_map(owed).collect();
                chunks.push((end, deliveries));
                start = end;
            }
        }
        match chunks.last_mut() {
            Some((_, last)) => last.extend(event_deliveries),
            None => chunks.push((0, event_deliveries)),
        }
        PendingWrite {
            changes,
            chunks,
            sizes,
            position: Some(position),
        }
    }

    /// Keeps the written changes' own events for the next step when a term counts them:
    /// they are read back from memory, as they would be from the store.
    fn echo_own_events(&mut self, changes: &[MembershipChange]) {
        if self.reads_own_events {
            self.echo
                .extend(changes.iter().filter_map(membership_event));
        }
    }
}

fn membership_change(
    segments: &[SegmentRecord],
    segment: SegmentId,
    profile: ProfileId,
    entered: bool,
    at: i64,
) -> MembershipChange {
    let record = &segments[segment.index()];
    MembershipChange {
        segment_id: record.id,
        segment_slug: record.slug.clone(),
        profile_id: profile,
        entered,
        at,
        first_fill: false,
    }
}

/// Builds the catalog of the saved segments. A definition that no longer checks (saved by
/// an older version, or a segment it refers to was deleted) is left out and logged, so
/// one bad segment never stops the others.
pub(crate) fn load_catalog(
    mut segments: Vec<SegmentRecord>,
) -> Result<(Catalog, Vec<SegmentRecord>), DecideError> {
    loop {
        let definitions = segments
            .iter()
            .map(|s| (s.slug.as_str(), s.definition.as_str()));
        match Catalog::new(definitions, &schema()) {
            Ok(catalog) => return Ok((catalog, segments)),
            Err(e) => {
                let culprit = match &e {
                    prossimo_segments::CatalogError::Definition { slug, .. } => slug.clone(),
                    prossimo_segments::CatalogError::Cycle { path } => {
                        path.first().cloned().unwrap_or_default()
                    }
                    _ => return Err(e.into()),
                };
                tracing::error!(segment = %culprit, error = %e, "segment left out of evaluation");
                let before = segments.len();
                segments.retain(|s| s.slug != culprit);
                if segments.len() == before {
                    return Err(e.into());
                }
            }
        }
    }
}

/// What a store scan must read for a catalog's terms: only their events and channels,
/// only as far back as the longest window (when every term has one), and bodies only when
/// a term reads properties.
pub struct TermScan {
    only: Option<BTreeSet<String>>,
    /// Only events with a time after this (ms): the longest window, when every term has one.
    pub since_ts: Option<i64>,
    with_properties: bool,
}

impl TermScan {
    pub fn of(catalog: &Catalog, now: i64) -> TermScan {
        let mut only = Some(BTreeSet::new());
        let mut since_ts = Some(now);
        let mut with_properties = false;
        for term in catalog.terms() {
            match (&term.aggregate().source, only.as_mut()) {
                (Source::Event(name), Some(keys)) => {
                    keys.insert(format!("event:{name}"));
                }
                (Source::Channel(name), Some(keys)) => {
                    keys.insert(format!("channel:{name}"));
                }
                (Source::AnyEvent, _) => only = None,
                (_, None) => {}
            }
            since_ts = match (since_ts, term.window_ms()) {
                (Some(oldest), Some(window)) => Some(oldest.min(now.saturating_sub(window))),
                _ => None,
            };
            with_properties |= term.text().contains("properties.");
        }
        TermScan {
            only,
            since_ts,
            with_properties,
        }
    }

    pub fn scan(&self, until_seq: i64) -> EventScan<'_> {
        EventScan {
            until_seq,
            only: self.only.as_ref(),
            since_ts: self.since_ts,
            with_properties: self.with_properties,
        }
    }
}

/// Whether a term counts the platform's own `Segment Entered` / `Segment Exited` events.
fn reads_own_events(catalog: &Catalog) -> bool {
    catalog.terms().iter().any(|t| {
        matches!(&t.aggregate().source,
            Source::Event(name) if name == SEGMENT_ENTERED || name == SEGMENT_EXITED)
    })
}

/// What a term needs to know about a stored event.
pub fn facts(e: &LoggedEvent) -> EventFacts<'_> {
    EventFacts {
        kind: &e.kind,
        event: e.event.as_deref(),
        channel: &e.channel,
        ts_ms: e.ts,
        properties: &e.properties,
        platform: e.platform,
    }
}

pub(crate) fn view_of<'a>(
    f: &'a ProfileFacts,
    aggregates: &'a ProfileAggregates,
    members: &'a SegmentSet,
) -> ProfileView<'a> {
    ProfileView {
        traits: &f.traits,
        computed: &f.computed,
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        first_channel: f.first_channel.as_deref(),
        aggregates,
        memberships: members,
    }
}
