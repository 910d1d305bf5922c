//! The journey runner: one thread per store (a lease), woken on the bus. It reads the
//! event log after its cursor, starts instances of the published journeys an event
//! triggers and hands the event to the instances that wait for it, fires the timers that
//! are due in order, and tells instances whose conditions may have changed. Each batch
//! commits with the cursor, in one write transaction of the decisions domain: after a
//! crash it reads again exactly what was not done, and sends are owed once per instance
//! and step whatever happens.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use chrono_tz::Tz;
use prossimo_bus::{Bus, Definitions, Happened, Subscription, Topic};
use prossimo_decide::audiences::Audiences;
use prossimo_decide::{Conditions, EventFilter};
use prossimo_identity::ProfileId;
use prossimo_model::Clock;
use prossimo_store::sql::{Conn, Val};
use prossimo_store::{LoggedEvent, PLATFORM_SOURCE, ProfileKey, Store, StoreError, WriteDomain};
use serde::Serialize;
use serde_json::{Value, json};

use crate::check::Journey;
use crate::dates::{DEFAULT_AT_MINUTE, occurrence_between};
use crate::definition::{DateTrigger, EventMatch, StepKind, Trigger, Until};
use crate::entry::instance_key;
use crate::instances::{Entrant, Instances, StoredInstance, enter, record, running};
use crate::lifecycle::JourneyState;
use crate::machine::{EventSeen, Facts, Input, advance};
use crate::service::check_definition;
use crate::stored::{Journeys, SCHEMA};

/// The zone of a person with no `timezone` trait, unless `[time] zone` says otherwise.
pub const DEFAULT_ZONE: Tz = chrono_tz::Europe::Rome;

/// How the runner paces itself.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The longest it sleeps without being woken (it reloads definitions then too).
    pub poll: Duration,
    /// How often it looks through every profile's traits for dates that came round (date
    /// triggers start within this long of their time).
    pub date_scan_every: Duration,
    /// The zone of a person without a valid `timezone` trait (`[time] zone`).
    pub zone: Tz,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            poll: Duration::from_secs(1),
            date_scan_every: Duration::from_secs(5 * 60),
            zone: DEFAULT_ZONE,
        }
    }
}

/// What the runner has done since start, for `/v1/journeys` and the console.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunnerStatus {
    pub ready: bool,
    /// Another process sharing the store runs journeys; this one takes over if it stops.
    pub standby: bool,
    pub live_journeys: usize,
    pub instances_started: u64,
    pub timers_fired: u64,
    pub sends_owed: u64,
    pub last_error: Option<String>,
}

enum Signal {
    Wake,
    Reload,
    Changed(Vec<ProfileId>),
    Stop,
}

/// Handle on the runner thread; [`JourneyRunner::stop`] stops it and waits.
#[derive(Clone)]
pub struct JourneyRunner {
    handle: Arc<Handle>,
}

struct Handle {
    signals: mpsc::Sender<Signal>,
    status: Arc<Mutex<RunnerStatus>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    _subscription: Subscription,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.signals.send(Signal::Stop);
    }
}

impl JourneyRunner {
    /// Starts the thread, subscribed to commits, membership and computed-trait changes and
    /// journeys' definitions on `bus`.
    pub fn spawn(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        config: RunnerConfig,
        bus: &Bus,
    ) -> JourneyRunner {
        let (signals, inbox) = mpsc::channel();
        let status = Arc::new(Mutex::new(RunnerStatus::default()));
        let heard = signals.clone();
        let subscription = bus.subscribe(
            "journeys",
            &[
                Topic::EventsCommitted,
                Topic::MembershipsChanged,
                Topic::ComputedTraitsChanged,
                Topic::DefinitionsChanged,
            ],
            move |happened| {
                let signal = match happened {
                    Happened::EventsCommitted { .. } => Signal::Wake,
                    Happened::DefinitionsChanged(Definitions::Journeys)
                    | Happened::DefinitionsChanged(Definitions::Segments) => Signal::Reload,
                    Happened::MembershipsChanged { changes } => {
                        Signal::Changed(changes.iter().map(|c| c.profile_id).collect())
                    }
                    Happened::ComputedTraitsChanged {
                        profiles: Some(profiles),
                    } => Signal::Changed(profiles.to_vec()),
                    _ => Signal::Wake,
                };
                let _ = heard.send(signal);
            },
        );
        let thread_status = Arc::clone(&status);
        let thread = thread::Builder::new()
            .name("prossimo-journeys".into())
            .spawn({
                let bus = bus.clone();
                move || run(store, clock, config, inbox, thread_status, bus)
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the journey runner"))
            .ok();
        JourneyRunner {
            handle: Arc::new(Handle {
                signals,
                status,
                thread: Mutex::new(thread),
                _subscription: subscription,
            }),
        }
    }

    /// Stops the thread once the batch under way is written, and waits for it.
    pub fn stop(&self) {
        let _ = self.handle.signals.send(Signal::Stop);
        let thread = self.handle.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the journey runner panicked");
        }
    }

    pub fn status(&self) -> RunnerStatus {
        self.handle
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

fn run(
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    config: RunnerConfig,
    inbox: mpsc::Receiver<Signal>,
    status: Arc<Mutex<RunnerStatus>>,
    bus: Bus,
) {
    let set_status = |update: &dyn Fn(&mut RunnerStatus)| {
        if let Ok(mut s) = status.lock() {
            update(&mut s);
        }
    };
    let _lease = loop {
        match store.try_lease("journeys") {
            Ok(Some(lease)) => break lease,
            Ok(None) => set_status(&|s| s.standby = true),
            Err(e) => set_status(&|s| s.last_error = Some(e.to_string())),
        }
        match inbox.recv_timeout(config.poll * 5) {
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            _ => {}
        }
    };
    set_status(&|s| s.standby = false);
    let mut runner = loop {
        match Runner::open(Arc::clone(&store), config.zone) {
            Ok(runner) => break runner,
            Err(e) => {
                tracing::error!(error = %e, "journey runner cannot start; retrying");
                set_status(&|s| s.last_error = Some(e.to_string()));
                match inbox.recv_timeout(config.poll * 5) {
                    Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    _ => continue,
                }
            }
        }
    };
    set_status(&|s| {
        s.ready = true;
        s.live_journeys = runner.live.len();
    });
    let mut last_reload = std::time::Instant::now();
    loop {
        let now = clock.now_ms();
        let wait = runner
            .next_due
            .map(|due| Duration::from_millis(u64::try_from((due - now).max(0)).unwrap_or(0)))
            .map_or(config.poll, |until| config.poll.min(until));
        let first = match inbox.recv_timeout(wait) {
            Ok(signal) => Some(signal),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut reload = last_reload.elapsed() >= config.poll;
        let mut changed: HashSet<ProfileId> = HashSet::new();
        for signal in first.into_iter().chain(inbox.try_iter()) {
            match signal {
                Signal::Stop => return,
                Signal::Reload => reload = true,
                Signal::Changed(profiles) => changed.extend(profiles),
                Signal::Wake => {}
            }
        }
        let result = (|| {
            if reload {
                runner.reload()?;
                last_reload = std::time::Instant::now();
            }
            let mut done = Done::default();
            runner.read_events(clock.as_ref(), &mut done)?;
            runner.read_memberships(clock.as_ref(), &mut done)?;
            runner.scan_dates(clock.as_ref(), config.date_scan_every, &mut done)?;
            runner.fire_timers(clock.as_ref(), &mut done)?;
            runner.changed(changed.into_iter().collect(), clock.as_ref(), &mut done)?;
            runner.next_due = Instances::of(&runner.store)?.next_due_live()?;
            Ok::<_, StoreError>(done)
        })();
        // What happened to instances goes onto the customers' event log.
        let result = result.and_then(|done| {
            if crate::timeline::log_journey_events(&runner.store)? > 0 {
                bus.publish(Happened::EventsCommitted {
                    buyers: Arc::from([]),
                });
            }
            Ok(done)
        });
        match result {
            Ok(done) => {
                if done.owed > 0 {
                    bus.publish(Happened::MessagesOwed);
                }
                set_status(&|s| {
                    s.live_journeys = runner.live.len();
                    s.instances_started += done.started;
                    s.timers_fired += done.fired;
                    s.sends_owed += done.owed;
                    s.last_error = None;
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "journey runner step failed; retrying");
                set_status(&|s| s.last_error = Some(e.to_string()));
            }
        }
    }
}

#[derive(Default)]
struct Done {
    started: u64,
    fired: u64,
    owed: u64,
}

/// A published version ready to run.
struct Live {
    journey_id: i64,
    slug: String,
    version: i64,
    state: JourneyState,
    journey: Journey,
}

/// How late a date trigger may still start (after a stop, say): a day.
const DATE_STALE_AFTER_MS: i64 = 24 * 3_600_000;

/// What the runner holds between batches.
struct Runner {
    store: Arc<Store>,
    /// The workspace's zone (`[time] zone`).
    zone: Tz,
    /// The platform's own source, once it exists: only its `Journey Triggered` events
    /// (written by `POST /v1/journeys/{slug}/trigger`) start API-triggered journeys; the
    /// same event sent with a write key starts nothing.
    platform_source: Option<i64>,
    /// The live version of each published or paused journey.
    live: Vec<Live>,
    /// Every version instances may be on, by journey and version.
    versions: HashMap<(i64, i64), Arc<Journey>>,
    conditions: Conditions,
    filters: HashMap<String, EventFilter>,
    next_due: Option<i64>,
}

/// The most events read, timers fired or changes handled in one transaction.
const BATCH: usize = 500;
/// The most timers fired in one pass of the runner.
const FIRED_PER_PASS: usize = 10_000;

impl Runner {
    fn open(store: Arc<Store>, zone: Tz) -> Result<Runner, StoreError> {
        store.migrate(&SCHEMA)?;
        // A first start begins at the log's head: journeys react to what happens from
        // now on, not to history.
        let head = store.log_heads()?.event_seq;
        let changes_head = Audiences::of(&store)?.last_change()?;
        store.write_transaction(WriteDomain::Decisions, |conn| {
            conn.execute(
                "INSERT INTO journey_cursor (id, event_seq) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[Val::Int(head)],
            )?;
            conn.execute(
                "UPDATE journey_cursor SET membership_seq = $1 WHERE id = 1 AND membership_seq IS NULL",
                &[Val::Int(changes_head)],
            )?;
            Ok(())
        })?;
        let mut runner = Runner {
            conditions: Conditions::new(&store, std::iter::empty()).map_err(decide_error)?,
            platform_source: store.source_by_name(PLATFORM_SOURCE)?.map(|s| s.id),
            zone,
            store,
            live: Vec::new(),
            versions: HashMap::new(),
            filters: HashMap::new(),
            next_due: None,
        };
        runner.load_running_versions()?;
        runner.reload()?;
        runner.next_due = Instances::of(&runner.store)?.next_due_live()?;
        Ok(runner)
    }

    /// Loads the live versions and compiles every condition and filter they use.
    fn reload(&mut self) -> Result<(), StoreError> {
        let journeys = Journeys::of(&self.store)?;
        let mut live = Vec::new();
        for record in journeys.list()? {
            let (Some(version), true) = (
                record.live_version,
                matches!(record.state, JourneyState::Published | JourneyState::Paused),
            ) else {
                continue;
            };
            if let Some(journey) = self.version(record.id, version)? {
                live.push(Live {
                    journey_id: record.id,
                    slug: record.slug.clone(),
                    version,
                    state: record.state,
                    journey: (*journey).clone(),
                });
            }
        }
        self.live = live;
        self.compile()
    }

    /// Compiles every condition and filter of the versions loaded.
    fn compile(&mut self) -> Result<(), StoreError> {
        let mut conditions = BTreeSet::new();
        let mut filters = BTreeSet::new();
        for journey in self.versions.values() {
            uses(journey, &mut conditions, &mut filters);
        }
        self.conditions = Conditions::new(&self.store, conditions.iter().map(String::as_str))
            .map_err(decide_error)?;
        self.filters = filters
            .into_iter()
            .filter_map(|f| Some((f.clone(), EventFilter::new(&f).ok()?)))
            .collect();
        Ok(())
    }

    /// Version `version` of journey `journey_id`, checked; cached, since versions never
    /// change. The caller compiles its conditions ([`Runner::compile`]) before asking.
    fn version(
        &mut self,
        journey_id: i64,
        version: i64,
    ) -> Result<Option<Arc<Journey>>, StoreError> {
        if let Some(journey) = self.versions.get(&(journey_id, version)) {
            return Ok(Some(Arc::clone(journey)));
        }
        let Some(stored) = Journeys::of(&self.store)?.version(journey_id, version)? else {
            return Ok(None);
        };
        match check_definition(&self.store, &stored.definition) {
            Ok(journey) => {
                let journey = Arc::new(journey);
                self.versions
                    .insert((journey_id, version), Arc::clone(&journey));
                Ok(Some(journey))
            }
            Err(e) => {
                // An audience it names was deleted since: its instances wait until it
                // is back or the journey is archived.
                tracing::warn!(journey_id, version, error = %e, "a journey version no longer checks");
                Ok(None)
            }
        }
    }

    /// Loads every version some instance still runs on (at start: instances started
    /// afterwards are on live versions, which `reload` loads).
    fn load_running_versions(&mut self) -> Result<(), StoreError> {
        for (journey_id, version) in Instances::of(&self.store)?.running_versions()? {
            self.version(journey_id, version)?;
        }
        Ok(())
    }

    /// The person as the machine asks about them, at `now`, seeing `event` if any.
    fn person<'a>(
        &'a self,
        profile: ProfileId,
        now: i64,
        event: Option<&'a LoggedEvent>,
    ) -> Result<Person<'a>, StoreError> {
        let Some(facts) = self.store.profile_facts(&[profile])?.into_iter().next() else {
            return Ok(Person {
                holding: BTreeSet::new(),
                zone: self.zone,
                traits: serde_json::Map::new(),
                filters: &self.filters,
                event,
            });
        };
        let holding = self
            .conditions
            .holding_for(&self.store, &facts, now)
            .map_err(decide_error)?;
        Ok(Person {
            holding,
            zone: self.zone,
            traits: facts.traits,
            filters: &self.filters,
            event,
        })
    }

    fn root(&self, profile: ProfileId) -> Result<ProfileId, StoreError> {
        Ok(self
            .store
            .resolve_profile(&ProfileKey::Id(profile))?
            .unwrap_or(profile))
    }

    /// Reads the events after the cursor, a batch at a time.
    fn read_events(&mut self, clock: &dyn Clock, done: &mut Done) -> Result<(), StoreError> {
        loop {
            let cursor = self
                .store
                .read(|conn| {
                    conn.query_one("SELECT event_seq FROM journey_cursor WHERE id = 1", &[])
                })?
                .and_then(|row| row[0].int())
                .unwrap_or(0);
            let events: Vec<LoggedEvent> = self
                .store
                .events_after(cursor)?
                .into_iter()
                .take(BATCH)
                .collect();
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(());
            };
            if self.platform_source.is_none()
                && events
                    .iter()
                    .any(|e| e.event.as_deref() == Some(JOURNEY_TRIGGERED))
            {
                self.platform_source = self.store.source_by_name(PLATFORM_SOURCE)?.map(|s| s.id);
            }
            let now = clock.now_ms();
            // The versions instances run on are loaded: those from before the start by
            // `open`, the live ones (every instance started since is on one) by `reload`.
            let mut work = Vec::new();
            for event in &events {
                work.push((event, self.root(event.profile_id)?));
            }
            let store = Arc::clone(&self.store);
            let owed = store.write_transaction(WriteDomain::Decisions, |conn| {
                let mut owed = 0;
                for (event, profile) in &work {
                    // Read in the transaction: an instance an earlier event of the batch
                    // started or moved is seen as it is now.
                    let running = running(conn, *profile)?;
                    owed += self.on_event(conn, event, *profile, &running, now, done)?;
                }
                conn.execute(
                    "UPDATE journey_cursor SET event_seq = $1 WHERE id = 1",
                    &[Val::Int(last)],
                )?;
                Ok(owed)
            })?;
            done.owed += owed;
        }
    }

    /// One event: to the instances that wait for it, then the journeys it triggers.
    fn on_event(
        &self,
        conn: &mut dyn Conn,
        event: &LoggedEvent,
        profile: ProfileId,
        running: &[StoredInstance],
        now: i64,
        done: &mut Done,
    ) -> Result<u64, StoreError> {
        // Most events concern no journey: the person (their conditions, read from every
        // event they have) is read only for the instances and journeys this one concerns.
        let waiting: Vec<(&StoredInstance, &Arc<Journey>)> = running
            .iter()
            .filter(|stored| !self.paused(stored.journey_id))
            .filter_map(|stored| {
                let journey = self.versions.get(&(stored.journey_id, stored.version))?;
                Some((stored, journey))
            })
            .collect();
        let triggered: Vec<&Live> = self
            .live
            .iter()
            .filter(|live| live.state == JourneyState::Published)
            .filter(|live| match &live.journey.definition.trigger {
                Trigger::Event(trigger) => self.triggers(trigger, event),
                Trigger::Api => {
                    api_trigger_of(event, self.platform_source) == Some(live.slug.as_str())
                }
                _ => false,
            })
            .collect();
        if waiting.is_empty() && triggered.is_empty() {
            return Ok(0);
        }
        let message = message_of(event);
        let person = self.person(profile, now, Some(event))?;
        let mut owed = 0;
        for (stored, journey) in waiting {
            let key = journey
                .definition
                .entry
                .instance_key
                .as_deref()
                .and_then(|path| instance_key(path, &message));
            let seen = EventSeen {
                name: event.event.as_deref().unwrap_or(&event.kind),
                instance_key: key.as_deref(),
                message: &message,
            };
            let mut moved = stored.clone();
            let actions = advance(
                journey,
                &mut moved.instance,
                Input::Event(seen),
                now,
                &person,
            );
            if !actions.is_empty() {
                owed += record(conn, &moved, &actions, now)? as u64;
            }
        }
        for live in triggered {
            let key = live
                .journey
                .definition
                .entry
                .instance_key
                .as_deref()
                .and_then(|path| instance_key(path, &message));
            if let Some(sent) = start(conn, live, &person, profile, key.as_deref(), &message, now)?
            {
                done.started += 1;
                owed += sent;
            }
        }
        Ok(owed)
    }

    /// Starts the published journeys that people's audience changes trigger (entering or
    /// leaving an audience; not a new audience's first members), reading the audiences'
    /// change log after its cursor, saved in the same transaction.
    fn read_memberships(&mut self, clock: &dyn Clock, done: &mut Done) -> Result<(), StoreError> {
        let audience_journeys = self.live.iter().any(|live| {
            matches!(
                live.journey.definition.trigger,
                Trigger::AudienceEntered(_) | Trigger::AudienceExited(_)
            )
        });
        loop {
            let cursor = self
                .store
                .read(|conn| {
                    conn.query_one(
                        "SELECT membership_seq FROM journey_cursor WHERE id = 1",
                        &[],
                    )
                })?
                .and_then(|row| row[0].int())
                .unwrap_or(0);
            let changes = Audiences::of(&self.store)?.changes_after(cursor, BATCH)?;
            let Some(last) = changes.last().map(|(id, _)| *id) else {
                return Ok(());
            };
            let now = clock.now_ms();
            let mut work = Vec::new();
            if audience_journeys {
                for (_, change) in changes.iter().filter(|(_, c)| !c.first_fill) {
                    let starts: Vec<&Live> = self
                        .live
                        .iter()
                        .filter(|live| live.state == JourneyState::Published)
                        .filter(|live| match &live.journey.definition.trigger {
                            Trigger::AudienceEntered(slug) => {
                                change.entered && *slug == change.segment_slug
                            }
                            Trigger::AudienceExited(slug) => {
                                !change.entered && *slug == change.segment_slug
                            }
                            _ => false,
                        })
                        .collect();
                    if !starts.is_empty() {
                        let person = self.person(change.profile_id, now, None)?;
                        work.push((change, starts, person));
                    }
                }
            }
            let store = Arc::clone(&self.store);
            let (started, owed) = store.write_transaction(WriteDomain::Decisions, |conn| {
                let (mut started, mut owed) = (0, 0);
                for (change, starts, person) in &work {
                    let trigger = json!({
                        "type": "audience",
                        "event": if change.entered { "Segment Entered" } else { "Segment Exited" },
                        "properties": {"segment": change.segment_slug},
                    });
                    for live in starts {
                        let Some(sent) =
                            start(conn, live, person, change.profile_id, None, &trigger, now)?
                        else {
                            continue;
                        };
                        started += 1;
                        owed += sent;
                    }
                }
                conn.execute(
                    "UPDATE journey_cursor SET membership_seq = $1 WHERE id = 1",
                    &[Val::Int(last)],
                )?;
                Ok((started, owed))
            })?;
            done.started += started;
            done.owed += owed;
        }
    }

    /// Starts the published journeys whose date trigger came round for someone since the
    /// last scan (at most every `every`): one pass over every profile's traits, then one
    /// transaction with the scan's time. Each occurrence is its own instance key
    /// (`birthday:2027-05-17`), so a date starts a person's journey once.
    fn scan_dates(
        &mut self,
        clock: &dyn Clock,
        every: Duration,
        done: &mut Done,
    ) -> Result<(), StoreError> {
        let dated: Vec<(&Live, &DateTrigger, u32)> = self
            .live
            .iter()
            .filter(|live| live.state == JourneyState::Published)
            .filter_map(|live| match &live.journey.definition.trigger {
                Trigger::Date(trigger) => {
                    let at = trigger
                        .at
                        .as_deref()
                        .and_then(prossimo_messages::minute_of_day)
                        .unwrap_or(DEFAULT_AT_MINUTE);
                    Some((live, trigger, at))
                }
                _ => None,
            })
            .collect();
        if dated.is_empty() {
            return Ok(());
        }
        let now = clock.now_ms();
        let last = self
            .store
            .read(|conn| {
                conn.query_one(
                    "SELECT dates_scanned_at FROM journey_cursor WHERE id = 1",
                    &[],
                )
            })?
            .and_then(|row| row[0].int());
        let Some(last) = last else {
            // The first scan begins now: dates that came round before are history.
            return self
                .store
                .write_transaction(WriteDomain::Decisions, |conn| {
                    conn.execute(
                        "UPDATE journey_cursor SET dates_scanned_at = $1 WHERE id = 1",
                        &[Val::Int(now)],
                    )?;
                    Ok(())
                });
        };
        if now - last < i64::try_from(every.as_millis()).unwrap_or(i64::MAX) {
            return Ok(());
        }
        // After a long stop, a date more than a day past is history: a birthday greeting
        // months late would be wrong.
        let from = last.max(now - DATE_STALE_AFTER_MS);
        let mut hits: Vec<(ProfileId, usize, String, Value)> = Vec::new();
        self.store.for_each_profile_facts(&mut |facts| {
            let zone = prossimo_messages::person_zone(&facts.traits, self.zone);
            for (i, (_, trigger, at)) in dated.iter().enumerate() {
                let Some(value) = facts.traits.get(&trigger.trait_name) else {
                    continue;
                };
                if let Some((day, _)) = occurrence_between(trigger, *at, value, zone, from, now) {
                    hits.push((
                        facts.id,
                        i,
                        format!("{}:{day}", trigger.trait_name),
                        json!({
                            "type": "date",
                            "event": "Date Reached",
                            "properties": {"trait": trigger.trait_name, "date": day.to_string()},
                        }),
                    ));
                }
            }
            Ok(())
        })?;
        let mut work = Vec::new();
        for (profile, i, key, trigger) in hits {
            let person = self.person(profile, now, None)?;
            work.push((profile, dated[i].0, key, trigger, person));
        }
        let store = Arc::clone(&self.store);
        let (started, owed) = store.write_transaction(WriteDomain::Decisions, |conn| {
            let (mut started, mut owed) = (0, 0);
            for (profile, live, key, trigger, person) in &work {
                if let Some(sent) = start(conn, live, person, *profile, Some(key), trigger, now)? {
                    started += 1;
                    owed += sent;
                }
            }
            conn.execute(
                "UPDATE journey_cursor SET dates_scanned_at = $1 WHERE id = 1",
                &[Val::Int(now)],
            )?;
            Ok((started, owed))
        })?;
        done.started += started;
        done.owed += owed;
        Ok(())
    }

    fn paused(&self, journey_id: i64) -> bool {
        self.live
            .iter()
            .any(|l| l.journey_id == journey_id && l.state == JourneyState::Paused)
    }

    fn triggers(&self, trigger: &EventMatch, event: &LoggedEvent) -> bool {
        event.event.as_deref() == Some(trigger.name.as_str())
            && trigger.filter.as_ref().is_none_or(|f| {
                self.filters
                    .get(f)
                    .is_some_and(|filter| filter.accepts(event))
            })
    }

    /// Fires the timers due now, earliest first, at most [`FIRED_PER_PASS`] (the rest in
    /// the next pass, which starts at once: new events are read in between, so a backlog
    /// of timers never holds them up for long).
    fn fire_timers(&mut self, clock: &dyn Clock, done: &mut Done) -> Result<(), StoreError> {
        for _ in 0..FIRED_PER_PASS / BATCH {
            let now = clock.now_ms();
            let due = Instances::of(&self.store)?.due_live(now, BATCH)?;
            if due.is_empty() {
                return Ok(());
            }
            let loaded = self.versions.len();
            let mut work = Vec::new();
            for stored in due {
                let journey = self.version(stored.journey_id, stored.version)?;
                work.push((stored, journey));
            }
            // A version met only now: its conditions before its instances are asked.
            if self.versions.len() != loaded {
                self.compile()?;
            }
            let store = Arc::clone(&self.store);
            let (fired, owed) = store.write_transaction(WriteDomain::Decisions, |conn| {
                let (mut fired, mut owed) = (0, 0);
                for (stored, journey) in &work {
                    let Some(journey) = journey else {
                        continue;
                    };
                    let person = self.person(stored.profile_id, now, None)?;
                    let mut moved = stored.clone();
                    let actions = advance(journey, &mut moved.instance, Input::Due, now, &person);
                    owed += record(conn, &moved, &actions, now)? as u64;
                    fired += 1;
                }
                Ok((fired, owed))
            })?;
            done.fired += fired;
            done.owed += owed;
            if fired == 0 {
                // Every due instance is on a version that no longer checks: they wait.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Tells the running instances of `profiles` that their conditions may have changed.
    fn changed(
        &mut self,
        profiles: Vec<ProfileId>,
        clock: &dyn Clock,
        done: &mut Done,
    ) -> Result<(), StoreError> {
        for chunk in profiles.chunks(BATCH) {
            let now = clock.now_ms();
            let mut work = Vec::new();
            for &profile in chunk {
                let profile = self.root(profile)?;
                work.push((profile, Instances::of(&self.store)?.running_for(profile)?));
            }
            let store = Arc::clone(&self.store);
            let owed = store.write_transaction(WriteDomain::Decisions, |conn| {
                let mut owed = 0;
                for (profile, running) in &work {
                    if running.is_empty() {
                        continue;
                    }
                    let person = self.person(*profile, now, None)?;
                    for stored in running {
                        let Some(journey) = self.versions.get(&(stored.journey_id, stored.version))
                        else {
                            continue;
                        };
                        if self.paused(stored.journey_id) {
                            continue;
                        }
                        let mut moved = stored.clone();
                        let actions =
                            advance(journey, &mut moved.instance, Input::Changed, now, &person);
                        if !actions.is_empty() {
                            owed += record(conn, &moved, &actions, now)? as u64;
                        }
                    }
                }
                Ok(owed)
            })?;
            done.owed += owed;
        }
        Ok(())
    }
}

/// Every condition and event filter a journey uses.
pub(crate) fn uses(
    journey: &Journey,
    conditions: &mut BTreeSet<String>,
    filters: &mut BTreeSet<String>,
) {
    let definition = &journey.definition;
    let mut waits: Vec<&Until> = definition
        .goal
        .iter()
        .chain(definition.exit_when.iter())
        .collect();
    for step in &definition.steps {
        match &step.kind {
            StepKind::Wait { until, .. } => waits.push(until),
            StepKind::Branch { branches, .. } => {
                conditions.extend(branches.iter().map(|b| b.condition.clone()));
            }
            _ => {}
        }
    }
    for until in waits {
        match until {
            Until::Condition(c) => {
                conditions.insert(c.clone());
            }
            Until::Event(e) => filters.extend(e.filter.clone()),
        }
    }
    conditions.extend(definition.entry.condition.clone());
    if let Trigger::Event(trigger) = &definition.trigger {
        filters.extend(trigger.filter.clone());
    }
}

/// The stored event as an instance key's path and a filter read it.
/// Starts `live` for `profile` (as `person`, with instance key `key`, triggered by
/// `trigger`) if its entry condition holds and its re-entry policy allows, and runs its
/// first steps: the sends it owed, or `None` when it did not start.
fn start(
    conn: &mut dyn Conn,
    live: &Live,
    person: &Person<'_>,
    profile: ProfileId,
    key: Option<&str>,
    trigger: &Value,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let entry = &live.journey.definition.entry;
    if entry.condition.as_ref().is_some_and(|c| !person.holds(c)) {
        return Ok(None);
    }
    let entrant = Entrant {
        journey_id: live.journey_id,
        version: live.version,
        profile_id: profile,
        key,
        trigger,
    };
    let Ok(mut stored) = enter(conn, &live.journey, &entrant, now)? else {
        return Ok(None);
    };
    let actions = advance(
        &live.journey,
        &mut stored.instance,
        Input::Enter,
        now,
        person,
    );
    Ok(Some(record(conn, &stored, &actions, now)? as u64))
}

/// The event that carries an API trigger: the journey's slug in `properties.journey`, the
/// caller's data beside it.
pub const JOURNEY_TRIGGERED: &str = "Journey Triggered";

/// The journey an API trigger names, if `event` is one the platform wrote.
fn api_trigger_of(event: &LoggedEvent, platform: Option<i64>) -> Option<&str> {
    if event.event.as_deref() != Some(JOURNEY_TRIGGERED) || Some(event.source_id) != platform {
        return None;
    }
    event.properties.get("journey").and_then(Value::as_str)
}

fn message_of(event: &LoggedEvent) -> Value {
    json!({
        "type": event.kind,
        "event": event.event,
        "channel": event.channel,
        "properties": event.properties,
    })
}

fn decide_error(e: prossimo_decide::DecideError) -> StoreError {
    match e {
        prossimo_decide::DecideError::Store(e) => e,
        other => StoreError::Invalid(other.to_string()),
    }
}

/// One person, as [`advance`] asks about them.
struct Person<'a> {
    holding: BTreeSet<String>,
    /// The workspace's zone, for a person without a `timezone` trait.
    zone: Tz,
    traits: serde_json::Map<String, Value>,
    filters: &'a HashMap<String, EventFilter>,
    event: Option<&'a LoggedEvent>,
}

impl Facts for Person<'_> {
    fn holds(&self, condition: &str) -> bool {
        self.holding.contains(condition)
    }

    fn passes(&self, filter: &str, _: &EventSeen) -> bool {
        match (self.filters.get(filter), self.event) {
            (Some(filter), Some(event)) => filter.accepts(event),
            _ => false,
        }
    }

    fn zone(&self) -> Tz {
        prossimo_messages::person_zone(&self.traits, self.zone)
    }

    fn date_trait(&self, name: &str) -> Option<i64> {
        let text = self.traits.get(name)?.as_str()?;
        prossimo_model::parse_timestamp(text)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}
