//! The analyst: one background thread that keeps the analyses fresh without blocking
//! ingestion. It runs every analysis on a schedule (and on demand), and re-scores a
//! customer as soon as one of their orders is committed, from the latest fitted
//! parameters and RFM breakpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prossimo_bus::{Bus, Happened, Subscription, Topic};
use prossimo_identity::Identifier;
use prossimo_store::{ProfileKey, Store};
use prossimo_understand::{LiveScorer, Options, Reports, UnderstandError, run};

use crate::service_thread::ServiceThread;
use serde::Serialize;

/// When the analyst runs the full analyses.
#[derive(Debug, Clone, Copy)]
pub struct AnalystConfig {
    /// Between full runs; `None` runs them only on demand (`POST /v1/analytics/run`).
    pub refresh_every: Option<Duration>,
}

impl Default for AnalystConfig {
    fn default() -> Self {
        AnalystConfig {
            refresh_every: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

/// What the analyst has done, for `/v1/analytics` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AnalystStatus {
    pub running: bool,
    pub runs: u64,
    pub last_run_seconds: Option<f64>,
    /// Why the last run failed as a whole (storage trouble), when it did.
    pub last_error: Option<String>,
    /// What the last run could not compute or had to leave out; the rest was computed
    /// (each `{kind, message, …}`).
    #[schema(value_type = Vec<Object>)]
    pub last_problems: Vec<prossimo_understand::Problem>,
    /// Customers re-scored after a new order since start.
    pub live_rescored: u64,
}

enum Work {
    RunNow,
    /// Identifiers of the people whose orders were just committed.
    Orders(Vec<Identifier>),
    Stop,
}

#[derive(Clone)]
pub struct Analyst {
    requests: RunRequests,
    pub status: Arc<Mutex<AnalystStatus>>,
    thread: Arc<Mutex<Option<ServiceThread>>>,
    _subscription: Arc<Subscription>,
}

/// The way to the analyst thread, and full runs asked for there.
#[derive(Clone)]
struct RunRequests {
    tx: Sender<Work>,
    /// A full run is asked for or under way: another request joins it instead of queuing
    /// a run of its own (ten clicks are one run).
    run_pending: Arc<AtomicBool>,
}

impl RunRequests {
    fn run_now(&self) -> RunRequest {
        if self.run_pending.swap(true, Ordering::AcqRel) {
            return RunRequest::Joined;
        }
        match self.tx.send(Work::RunNow) {
            Ok(()) => RunRequest::Started,
            Err(_) => {
                self.run_pending.store(false, Ordering::Release);
                RunRequest::Stopped
            }
        }
    }
}

/// What became of a request for a full run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRequest {
    /// A run starts for this request.
    Started,
    /// A run was already asked for or under way; this request is answered by it.
    Joined,
    /// The analyst has stopped.
    Stopped,
}

pub use prossimo_understand::LAST_RUN;

impl Analyst {
    /// Starts the thread. It hears of committed orders on `bus` and tells the bus whose
    /// computed traits each run or re-scoring rewrote.
    pub fn start(store: Arc<Store>, config: AnalystConfig, bus: &Bus) -> std::io::Result<Analyst> {
        let (tx, rx) = channel();
        let status = Arc::new(Mutex::new(AnalystStatus::default()));
        let requests = RunRequests {
            tx,
            run_pending: Arc::new(AtomicBool::new(false)),
        };
        let heard = requests.clone();
        let subscription = bus.subscribe(
            "analyst",
            &[Topic::EventsCommitted, Topic::AnalysisRequested],
            move |happened| match happened {
                Happened::EventsCommitted { buyers } if !buyers.is_empty() => {
                    // A stopped analyst only means no live scores; ingestion goes on.
                    let _ = heard.tx.send(Work::Orders(buyers.to_vec()));
                }
                Happened::AnalysisRequested => {
                    heard.run_now();
                }
                _ => {}
            },
        );
        let worker = Worker {
            store,
            status: status.clone(),
            run_pending: Arc::clone(&requests.run_pending),
            bus: bus.clone(),
        };
        let thread = ServiceThread::spawn("prossimo-analyst", move || worker.serve(&rx, config))?;
        Ok(Analyst {
            requests,
            status,
            thread: Arc::new(Mutex::new(Some(thread))),
            _subscription: Arc::new(subscription),
        })
    }

    /// Asks the thread to stop once its current work is done, and waits at most `patience`
    /// for it (a full run at a million customers takes a while; what it wrote is kept and
    /// the next run redoes the rest). True when it stopped.
    pub fn stop(&self, patience: Duration) -> bool {
        let _ = self.requests.tx.send(Work::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        thread.is_none_or(|t| t.join_within(patience))
    }

    /// Asks for a full run now, unless one is already asked for or under way.
    pub fn run_now(&self) -> RunRequest {
        self.requests.run_now()
    }

    pub fn status(&self) -> AnalystStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The analyst thread's side.
struct Worker {
    store: Arc<Store>,
    status: Arc<Mutex<AnalystStatus>>,
    run_pending: Arc<AtomicBool>,
    bus: Bus,
}

impl Worker {
    fn serve(&self, rx: &Receiver<Work>, config: AnalystConfig) {
        let store = &*self.store;
        let mut scorer = LiveScorer::load(store).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot load the latest analysis; live scoring waits for a run");
            LiveScorer::default()
        });
        // A store that was never analysed, or not for a whole interval, is analysed at once.
        let mut next_run = config.refresh_every.map(|every| {
            let stale = Reports::of(store)
                .and_then(|r| r.get("rfm"))
                .ok()
                .flatten()
                .is_none_or(|a| store.now_ms() - a.computed_at >= every.as_millis() as i64);
            if stale {
                Instant::now()
            } else {
                Instant::now() + every
            }
        });
        loop {
            let wait = next_run.map(|at| at.saturating_duration_since(Instant::now()));
            let work = match wait {
                Some(wait) => match rx.recv_timeout(wait) {
                    Ok(work) => Some(work),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(work) => Some(work),
                    Err(_) => return,
                },
            };
            match work {
                Some(Work::Orders(mut people)) => {
                    // Take every order notification already queued: one pass re-scores them all.
                    let (mut run_requested, mut stop) = (false, false);
                    while let Ok(more) = rx.try_recv() {
                        match more {
                            Work::Orders(more) => people.extend(more),
                            Work::RunNow => run_requested = true,
                            Work::Stop => stop = true,
                        }
                    }
                    self.rescore(&scorer, people);
                    if stop {
                        return;
                    }
                    if run_requested {
                        self.full_run(&mut scorer);
                    }
                }
                Some(Work::Stop) => return,
                Some(Work::RunNow) | None => {
                    self.full_run(&mut scorer);
                    next_run = config.refresh_every.map(|every| Instant::now() + every);
                }
            }
        }
    }

    fn full_run(&self, scorer: &mut LiveScorer) {
        let store = &*self.store;
        // A scheduled run is joined by requests too.
        self.run_pending.store(true, Ordering::Release);
        self.set(|s| s.running = true);
        let started = Instant::now();
        let outcome = run(store, &[], &Options::new(store.now_ms())).and_then(|o| {
            *scorer = LiveScorer::load(store)?;
            Ok::<_, UnderstandError>(o)
        });
        let seconds = started.elapsed().as_secs_f64();
        let summary = match &outcome {
            Ok(o) => serde_json::json!({
                "ok": true, "seconds": seconds, "profiles_updated": o.profiles_updated,
                "problems": o.problems,
            }),
            Err(e) => serde_json::json!({
                "ok": false, "seconds": seconds, "error": e.to_string(), "problems": [],
            }),
        };
        if let Err(e) = Reports::of(store).and_then(|r| r.save(LAST_RUN, &summary)) {
            tracing::warn!(error = %e, "cannot record the analysis run");
        }
        match outcome {
            Ok(o) => {
                tracing::info!(
                    seconds,
                    profiles = o.profiles_updated,
                    problems = o.problems.len(),
                    "analyses refreshed"
                );
                self.bus
                    .publish(Happened::ComputedTraitsChanged { profiles: None });
                self.set(|s| {
                    s.running = false;
                    s.runs += 1;
                    s.last_run_seconds = Some(seconds);
                    s.last_error = None;
                    s.last_problems = o.problems;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "analysis run failed");
                self.set(|s| {
                    s.running = false;
                    s.last_error = Some(e.to_string());
                    s.last_problems = Vec::new();
                });
            }
        }
        self.run_pending.store(false, Ordering::Release);
    }

    fn rescore(&self, scorer: &LiveScorer, people: Vec<Identifier>) {
        if scorer.is_empty() {
            return;
        }
        let store = &*self.store;
        let mut profiles = Vec::with_capacity(people.len());
        for id in people {
            match store.resolve_profile(&ProfileKey::Identifier(id)) {
                Ok(Some(root)) => profiles.push(root),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot resolve a customer to re-score"),
            }
        }
        profiles.sort_unstable();
        profiles.dedup();
        match scorer.rescore(store, &profiles, store.now_ms()) {
            Ok(n) => {
                self.set(|s| s.live_rescored += n as u64);
                self.bus.publish(Happened::ComputedTraitsChanged {
                    profiles: Some(profiles.into()),
                });
            }
            Err(e) => tracing::warn!(error = %e, "live re-scoring failed"),
        }
    }

    fn set(&self, change: impl FnOnce(&mut AnalystStatus)) {
        if let Ok(mut s) = self.status.lock() {
            change(&mut s);
        }
    }
}
