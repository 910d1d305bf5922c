//! The decider thread: runs the [`Engine`] as events are committed, as boundaries come
//! due, and when segments, destinations or computed traits change.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use prossimo_identity::ProfileId;
use prossimo_store::{MembershipChange, Store};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::{Clock, Engine};

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

/// Handle on the decider thread. Dropping every handle stops it.
#[derive(Clone)]
pub struct Decider {
    signals: mpsc::Sender<Signal>,
    changes: broadcast::Sender<MembershipChange>,
    status: Arc<Mutex<DeciderStatus>>,
}

impl Decider {
    /// Starts the thread. `on_written` runs after every step that wrote outbox rows (the
    /// dispatcher's wake-up).
    pub fn spawn(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        config: DeciderConfig,
        on_written: Arc<dyn Fn() + Send + Sync>,
    ) -> Decider {
        let (signals, inbox) = mpsc::channel();
        let (changes, _) = broadcast::channel(4096);
        let status = Arc::new(Mutex::new(DeciderStatus::default()));
        let decider = Decider {
            signals,
            changes: changes.clone(),
            status: Arc::clone(&status),
        };
        let spawned = thread::Builder::new()
            .name("prossimo-decider".into())
            .spawn(move || run(store, clock, config, inbox, changes, status, on_written));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the decider thread");
        }
        decider
    }

    /// New events were committed.
    pub fn committed(&self) {
        let _ = self.signals.send(Signal::Committed);
    }

    /// Computed traits changed for these profiles (`None`: for everyone).
    pub fn computed_changed(&self, profiles: Option<Vec<ProfileId>>) {
        let _ = self.signals.send(Signal::Computed(profiles));
    }

    /// Segments or destinations were saved.
    pub fn reload(&self) {
        let _ = self.signals.send(Signal::Reload);
    }

    /// Every membership change, after it is committed (the internal bus journeys use).
    pub fn subscribe(&self) -> broadcast::Receiver<MembershipChange> {
        self.changes.subscribe()
    }

    pub fn status(&self) -> DeciderStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn run(
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    config: DeciderConfig,
    inbox: mpsc::Receiver<Signal>,
    changes: broadcast::Sender<MembershipChange>,
    status: Arc<Mutex<DeciderStatus>>,
    on_written: Arc<dyn Fn() + Send + Sync>,
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
            if let Err(RecvTimeoutError::Disconnected) = inbox.recv_timeout(left) {
                return;
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
                    Err(RecvTimeoutError::Disconnected) => return,
                    _ => continue,
                }
            }
        }
    };
    set_status(&|s| {
        s.ready = true;
        s.last_error = None;
    });
    let mut last_reload = std::time::Instant::now();
    // After a failed step the state in memory is ahead of the store: start again from it.
    let mut broken = false;
    loop {
        let wait = engine
            .next_boundary()
            .map(|at| (at - clock.now_ms()).max(0) as u64)
            .map_or(config.poll, |ms| config.poll.min(Duration::from_millis(ms)));
        let first = match inbox.recv_timeout(wait) {
            Ok(signal) => Some(signal),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut reload = take_signals(&mut engine, first.into_iter().chain(inbox.try_iter()));
        if last_reload.elapsed() >= config.poll {
            reload = true;
        }
        loop {
            // A segment or destination saved through this server was signalled before the
            // events that follow it were committed: apply it before reading them, so a
            // customer entering a brand-new audience is owed to a brand-new destination.
            reload |= take_signals(&mut engine, inbox.try_iter());
            if reload {
                reload = false;
                last_reload = std::time::Instant::now();
                // Sizes are not current until a rebuild for changed segments is over.
                let reloaded = engine.reload(&mut || set_status(&|s| s.rebuilding = true));
                set_status(&|s| s.rebuilding = false);
                if let Err(e) = reloaded {
                    tracing::error!(error = %e, "cannot reload segments");
                }
            }
            let stepped = if broken {
                engine.rebuild()
            } else {
                engine.step()
            };
            match stepped {
                Ok(report) => {
                    // A rebuild is followed by a step for what arrived meanwhile.
                    let rebuilt = std::mem::take(&mut broken);
                    let caught_up = report.events == 0 && !rebuilt;
                    if report.deliveries > 0 {
                        on_written();
                    }
                    let written = report.changes.len() as u64;
                    for change in report.changes {
                        // No subscriber is fine: the change is stored.
                        let _ = changes.send(change);
                    }
                    set_status(&|s| {
                        s.changes_written += written;
                        s.tracked_profiles = engine.tracked_profiles();
                        s.next_boundary = engine.next_boundary();
                        s.last_error = None;
                    });
                    if caught_up {
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
}

/// Applies queued signals; true when segments or destinations must be reloaded.
fn take_signals(engine: &mut Engine, signals: impl Iterator<Item = Signal>) -> bool {
    let mut reload = false;
    for signal in signals {
        match signal {
            Signal::Committed => {}
            Signal::Computed(ids) => engine.computed_changed(ids.as_deref()),
            Signal::Reload => reload = true,
        }
    }
    reload
}
