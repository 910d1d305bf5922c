//! The group-committing writer. HTTP handlers parse and validate in parallel, then hand
//! their messages to one writer thread; the writer takes everything that queued up while
//! the previous commit was running and writes it in one transaction, so one fsync pays for
//! many requests. A handler answers only after its messages are committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prossimo_bus::{Bus, Happened};
use prossimo_identity::Identifier;
use prossimo_store::{Incoming, IngestReport, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::service_thread::ServiceThread;

#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Requests that may wait for the writer; beyond that the API answers 503.
    pub queue_requests: usize,
    /// Messages written in one transaction at most.
    pub max_group_messages: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_requests: 4_096,
            max_group_messages: 20_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the ingest queue is full")]
    Overloaded,
    #[error("the writer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Job {
    batch: Vec<Incoming>,
    ack: oneshot::Sender<Result<IngestReport, StoreError>>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub commits: AtomicU64,
    pub messages_stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub failed_commits: AtomicU64,
}

#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    pub stats: Arc<PipelineStats>,
    thread: Arc<Mutex<Option<ServiceThread>>>,
}

impl Pipeline {
    /// Starts the writer thread, which publishes each commit on `bus`; it stops once every
    /// `Pipeline` clone is dropped and what they queued is written.
    pub fn start(store: Arc<Store>, config: PipelineConfig, bus: Bus) -> std::io::Result<Pipeline> {
        let (tx, rx) = mpsc::channel(config.queue_requests.max(1));
        let stats = Arc::new(PipelineStats::default());
        let writer_stats = stats.clone();
        let thread = ServiceThread::spawn("prossimo-writer", move || {
            writer(store, rx, config, &writer_stats, &bus)
        })?;
        Ok(Pipeline {
            tx,
            stats,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Lets go of this handle and waits, at most `patience`, for the writer to commit what
    /// was queued and stop (it stops once no other handle is left). True when it did.
    pub fn drain(self, patience: Duration) -> bool {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self);
        thread.is_none_or(|t| t.join_within(patience))
    }

    /// Writes the messages durably; resolves once they are committed.
    pub async fn submit(&self, batch: Vec<Incoming>) -> Result<IngestReport, SubmitError> {
        let (ack, done) = oneshot::channel();
        self.tx.try_send(Job { batch, ack }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
        })?;
        Ok(done.await.map_err(|_| SubmitError::Stopped)??)
    }

    /// Blocking variant for the CLI (import, demo), which runs outside the async runtime.
    pub fn submit_blocking(&self, batch: Vec<Incoming>) -> Result<IngestReport, SubmitError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .blocking_send(Job { batch, ack })
            .map_err(|_| SubmitError::Stopped)?;
        Ok(done.blocking_recv().map_err(|_| SubmitError::Stopped)??)
    }
}

fn writer(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Job>,
    config: PipelineConfig,
    stats: &PipelineStats,
    bus: &Bus,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut messages = jobs[0].batch.len();
        while messages < config.max_group_messages {
            match rx.try_recv() {
                Ok(job) => {
                    messages += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        commit_group(&store, jobs, stats, bus);
    }
    tracing::info!("writer drained and stopped");
}

fn commit_group(store: &Store, jobs: Vec<Job>, stats: &PipelineStats, bus: &Bus) {
    // The requests' messages are moved, not copied, into one group: this thread is the
    // ingest bottleneck. `sizes` finds each request's slice again if the group fails.
    let sizes: Vec<usize> = jobs.iter().map(|j| j.batch.len()).collect();
    let (acks, batches): (Vec<_>, Vec<_>) = jobs.into_iter().map(|j| (j.ack, j.batch)).unzip();
    let group: Vec<Incoming> = batches.into_iter().flatten().collect();
    match store.ingest(&group) {
        Ok(report) => {
            record(stats, &report);
            committed(bus, &group);
            // Duplicates and counts per request are not needed by the API: success is
            // success, whether a message was new or a retry.
            for ack in acks {
                let _ = ack.send(Ok(report));
            }
        }
        Err(e) if acks.len() == 1 || e.is_transient() => {
            // A store that is locked or away fails every request alike: retrying them one
            // by one would only make each wait for the lock again before its 503.
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, requests = acks.len(), "commit failed");
            let reason = e.to_string();
            let mut acks = acks.into_iter();
            if let Some(first) = acks.next() {
                let _ = first.send(Err(e));
            }
            for ack in acks {
                let _ = ack.send(Err(StoreError::Unavailable(reason.clone())));
            }
        }
        Err(e) => {
            // Isolate the failure: commit each request alone so one bad request cannot
            // fail the others.
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, requests = acks.len(), "group commit failed; retrying requests one by one");
            let mut start = 0;
            for (ack, size) in acks.into_iter().zip(sizes) {
                let part = &group[start..start + size];
                let result = store.ingest(part);
                start += size;
                if let Ok(report) = &result {
                    record(stats, report);
                    committed(bus, part);
                }
                let _ = ack.send(result);
            }
        }
    }
}

/// Tells the bus what was committed.
fn committed(bus: &Bus, group: &[Incoming]) {
    bus.publish(Happened::EventsCommitted {
        buyers: buyers(group).into(),
    });
}

/// One identifier of each person with an order event in `group`.
fn buyers(group: &[Incoming]) -> Vec<Identifier> {
    group
        .iter()
        .filter(|m| matches!(m.order, Ok(Some(_))))
        .filter_map(|m| m.extracted.ids.first().cloned())
        .collect()
}

fn record(stats: &PipelineStats, report: &IngestReport) {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats
        .messages_stored
        .fetch_add(report.stored as u64, Ordering::Relaxed);
    stats
        .duplicates
        .fetch_add(report.duplicates as u64, Ordering::Relaxed);
}
