//! The decider thread: runs the [`Engine`] as events are committed, as boundaries come
//! due, and when segments, destinations or computed traits change. It hears of those on the
//! bus, and tells the bus what it committed (memberships changed, outbox written).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use prossimo_bus::MembershipChange;
use prossimo_bus::{Bus, Definitions, Happened, Subscription, Topic};
use prossimo_identity::ProfileId;
use prossimo_store::Store;
use serde::Serialize;

use prossimo_model::Clock;

use crate::{Engine, PendingWrite};

#[derive(Debug, Clone)]
pub struct DeciderConfig {
    /// How often to look for work written by other processes (another node, an import)
    /// and for changed segments or destinations.
    pub poll: Duration,
}

impl Default for DeciderConfig {
    fn default() -> Self {
        DeciderConfig {
            poll: Duration::from_secs(1),
        }
    }
}

enum Signal {
    Committed,
    Computed(Option<Vec<ProfileId>>),
    Reload,
    /// Finish the step under way, write everything handed over, give the lease back.
    Stop,
}

/// What the decider is doing, for `/v1/segments` and the metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeciderStatus {
    pub ready: bool,
    /// Another process sharing the store runs the decider; this one takes over if it stops.
    pub standby: bool,
    /// Segments changed and every profile is being evaluated again: sizes are not current.
    pub rebuilding: bool,
    pub last_error: Option<String>,
    pub tracked_profiles: usize,
    pub changes_written: u64,
    pub next_boundary: Option<i64>,
}

/// Handle on the decider thread. [`Decider::stop`] stops it and waits; dropping every
/// handle stops it too.
#[derive(Clone)]
pub struct Decider {
    handle: Arc<Handle>,
}

struct Handle {
    signals: mpsc::Sender<Signal>,
    status: Arc<Mutex<DeciderStatus>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    _subscription: Subscription,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.signals.send(Signal::Stop);
    }
}

impl Decider {
    /// Starts the thread, subscribed to commits, computed traits and definition changes on
    /// `bus`; it publishes the membership changes and outbox rows it commits.
    pub fn spawn(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        config: DeciderConfig,
        bus: Bus,
    ) -> Decider {
        let (signals, inbox) = mpsc::channel();
        let status = Arc::new(Mutex::new(DeciderStatus::default()));
        let heard = signals.clone();
        let subscription = bus.subscribe(
            "decider",
            &[
                Topic::EventsCommitted,
                Topic::ComputedTraitsChanged,
                Topic::DefinitionsChanged,
            ],
            move |happened| {
                let signal = match happened {
                    Happened::EventsCommitted { .. } => Signal::Committed,
                    Happened::ComputedTraitsChanged { profiles } => {
                        Signal::Computed(profiles.as_ref().map(|p| p.to_vec()))
                    }
                    // Journeys are not the decider's: nothing of its own changed.
                    Happened::DefinitionsChanged(Definitions::Journeys) => return,
                    _ => Signal::Reload,
                };
                // A stopped decider has nothing to be woken for.
                let _ = heard.send(signal);
            },
        );
        let thread_status = Arc::clone(&status);
        let spawned = thread::Builder::new()
            .name("prossimo-decider".into())
            .spawn(move || run(store, clock, config, inbox, bus, thread_status));
        let thread = match spawned {
            Ok(thread) => Some(thread),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the decider thread");
                None
            }
        };
        Decider {
            handle: Arc::new(Handle {
                signals,
                status,
                thread: Mutex::new(thread),
                _subscription: subscription,
            }),
        }
    }

    /// Stops the thread once the step under way is written, and waits for it: everything
    /// it computed is stored and its lease given back when this returns.
    pub fn stop(&self) {
        let _ = self.handle.signals.send(Signal::Stop);
        let thread = self.handle.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the decider thread panicked");
        }
    }

    pub fn status(&self) -> DeciderStatus {
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
    config: DeciderConfig,
    inbox: mpsc::Receiver<Signal>,
    bus: Bus,
    status: Arc<Mutex<DeciderStatus>>,
) {
    let set_status = |update: &dyn Fn(&mut DeciderStatus)| {
        if let Ok(mut s) = status.lock() {
            update(&mut s);
        }
    };
    // One decider per store: the others wait for the lease.
    let _lease = loop {
        match store.try_lease("decider") {
            Ok(Some(lease)) => break lease,
            Ok(None) => set_status(&|s| s.standby = true),
            Err(e) => {
                tracing::error!(error = %e, "cannot take the decider lease; retrying");
                set_status(&|s| s.last_error = Some(e.to_string()));
            }
        }
        // Signals (commits) keep coming while on standby: ask again only after the whole
        // interval, not once per commit (on PostgreSQL each try is a new connection).
        let until = std::time::Instant::now() + config.poll * 5;
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match inbox.recv_timeout(left) {
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                _ => {}
            }
        }
    };
    set_status(&|s| s.standby = false);
    let mut engine = loop {
        match Engine::open(Arc::clone(&store), Arc::clone(&clock)) {
            Ok(engine) => break engine,
            Err(e) => {
                tracing::error!(error = %e, "decider cannot start; retrying");
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
        s.last_error = None;
    });
    let writer = Writer::spawn(Arc::clone(&store), bus, Arc::clone(&status));
    let mut last_reload = std::time::Instant::now();
    // After a failed write the state in memory is ahead of the store: start again from it.
    let mut broken = false;
    'run: loop {
        let wait = engine
            .next_boundary()
            .map(|at| (at - clock.now_ms()).max(0) as u64)
            .map_or(config.poll, |ms| config.poll.min(Duration::from_millis(ms)));
        let first = match inbox.recv_timeout(wait) {
            Ok(signal) => Some(signal),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break 'run,
        };
        let Heard { mut reload, stop } =
            take_signals(&mut engine, first.into_iter().chain(inbox.try_iter()));
        if stop {
            break 'run;
        }
        if last_reload.elapsed() >= config.poll {
            reload = true;
        }
        loop {
            // A segment or destination saved through this server was signalled before the
            // events that follow it were committed: apply it before reading them, so a
            // customer entering a brand-new audience is owed to a brand-new destination.
            let heard = take_signals(&mut engine, inbox.try_iter());
            if heard.stop {
                break 'run;
            }
            reload |= heard.reload;
            if broken || reload || writer.failed() {
                // A rebuild reads what is stored: every write handed over must be in.
                broken |= !writer.flush();
            }
            if broken {
                match engine.rebuild() {
                    Ok(report) => {
                        broken = false;
                        writer.publish(report.changes, report.deliveries);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "decider cannot rebuild; retrying");
                        set_status(&|s| s.last_error = Some(e.to_string()));
                        break;
                    }
                }
            }
            if reload {
                reload = false;
                last_reload = std::time::Instant::now();
                // Sizes are not current until a rebuild for changed segments is over.
                let reloaded = engine.reload(&mut || set_status(&|s| s.rebuilding = true));
                set_status(&|s| s.rebuilding = false);
                if let Err(e) = reloaded {
                    // A rebuild for changed segments may have written only part of its
                    // changes: start again from the store.
                    tracing::error!(error = %e, "cannot reload segments; rebuilding from the store");
                    set_status(&|s| s.last_error = Some(e.to_string()));
                    broken = true;
                    break;
                }
            }
            match engine.prepare_step() {
                Ok((report, pending)) => {
                    set_status(&|s| {
                        s.tracked_profiles = engine.tracked_profiles();
                        s.next_boundary = engine.next_boundary();
                    });
                    // Written on the writer's thread while the next step is computed here.
                    writer.write(pending);
                    if report.events == 0 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "decide step failed; rebuilding from the store");
                    set_status(&|s| s.last_error = Some(e.to_string()));
                    broken = true;
                    break;
                }
            }
        }
    }
    // Everything handed over is written before the lease is let go.
    writer.flush();
    tracing::info!("decider stopped");
}

enum WriterJob {
    Write(PendingWrite),
    /// Answers whether every write since the last flush succeeded, once they are done.
    Flush(mpsc::Sender<bool>),
}

/// The decider's writer thread: stores each step's decisions in order while the decider
/// computes the next step, then wakes the dispatcher and publishes the changes. The
/// decider spent about half its time writing; the two halves now overlap.
struct Writer {
    jobs: mpsc::SyncSender<WriterJob>,
    shared: Arc<WriterShared>,
}

/// What the decider and its writer thread share.
struct WriterShared {
    /// A write failed since the last flush; later ones are skipped until then.
    failed: AtomicBool,
    store: Arc<Store>,
    bus: Bus,
    status: Arc<Mutex<DeciderStatus>>,
}

impl Writer {
    fn spawn(store: Arc<Store>, bus: Bus, status: Arc<Mutex<DeciderStatus>>) -> Writer {
        // One step waiting while one is written: the decider runs at most a step ahead.
        let (jobs, inbox) = mpsc::sync_channel::<WriterJob>(1);
        let shared = Arc::new(WriterShared {
            failed: AtomicBool::new(false),
            store,
            bus,
            status,
        });
        let this = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("prossimo-decide-writer".into())
            .spawn(move || {
                let mut failed_since_flush = false;
                for job in inbox {
                    match job {
                        // After a failure the rest is skipped: the decider rebuilds.
                        WriterJob::Write(pending) if !this.failed() => {
                            failed_since_flush |= !this.apply(pending);
                        }
                        WriterJob::Write(_) => {}
                        WriterJob::Flush(reply) => {
                            this.failed.store(false, Ordering::SeqCst);
                            let _ = reply.send(!std::mem::take(&mut failed_since_flush));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the decider's writer thread; writing inline");
        }
        Writer { jobs, shared }
    }

    fn write(&self, pending: PendingWrite) {
        if let Err(mpsc::SendError(WriterJob::Write(pending))) =
            self.jobs.send(WriterJob::Write(pending))
        {
            // No writer thread: write here.
            self.shared.apply(pending);
        }
    }

    /// A write failed since the last flush.
    fn failed(&self) -> bool {
        self.shared.failed()
    }

    /// Waits for every write handed over; false when one of them failed since the last
    /// flush.
    fn flush(&self) -> bool {
        let (reply, answer) = mpsc::channel();
        if self.jobs.send(WriterJob::Flush(reply)).is_err() {
            return !self.shared.failed.swap(false, Ordering::SeqCst);
        }
        answer.recv().unwrap_or(false)
    }

    /// After changes were written on the decider's thread (a rebuild): wakes the
    /// dispatcher for their deliveries and publishes them.
    fn publish(&self, changes: Vec<MembershipChange>, deliveries: usize) {
        if deliveries > 0 {
            self.shared.bus.publish(Happened::OutboxWritten);
        }
        self.shared.publish(changes);
    }
}

impl WriterShared {
    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Writes, waking the dispatcher after each transaction that owes webhooks, and
    /// publishes what was committed; on failure notes it for the decider. True when
    /// everything was written.
    fn apply(&self, pending: PendingWrite) -> bool {
        let mut committed = 0;
        let written = pending.write_then(&self.store, &mut |stored, deliveries| {
            committed = stored;
            if deliveries > 0 {
                self.bus.publish(Happened::OutboxWritten);
            }
        });
        let mut changes = pending.into_changes();
        changes.truncate(committed);
        self.publish(changes);
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "decide write failed; rebuilding from the store");
                if let Ok(mut s) = self.status.lock() {
                    s.last_error = Some(e.to_string());
                }
                self.failed.store(true, Ordering::SeqCst);
                false
            }
        }
    }

    /// Puts stored changes on the bus.
    fn publish(&self, changes: Vec<MembershipChange>) {
        let written = changes.len() as u64;
        if !changes.is_empty() {
            self.bus.publish(Happened::MembershipsChanged {
                changes: changes.into(),
            });
        }
        if let Ok(mut s) = self.status.lock() {
            s.changes_written += written;
            s.last_error = None;
        }
    }
}

/// What queued signals ask for beyond what was applied to the engine.
struct Heard {
    /// Segments or destinations must be reloaded.
    reload: bool,
    stop: bool,
}

/// Applies queued signals.
fn take_signals(engine: &mut Engine, signals: impl Iterator<Item = Signal>) -> Heard {
    let mut heard = Heard {
        reload: false,
        stop: false,
    };
    for signal in signals {
        match signal {
            Signal::Committed => {}
            Signal::Computed(ids) => engine.computed_changed(ids.as_deref()),
            Signal::Reload => heard.reload = true,
            Signal::Stop => heard.stop = true,
        }
    }
    heard
}
