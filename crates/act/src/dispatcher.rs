//! Delivers the outbox: one task per enabled destination, reconciled with the stored
//! destinations whenever they change.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prossimo_bus::{Bus, Definitions, Happened, Subscription, Topic};
use prossimo_store::{Store, StoreError};

use crate::destinations::{
    AttemptRecord, DeliveryOutcome, DeliveryRecord, DestinationRecord, Destinations,
};
use rand::RngExt;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::ActError;
use crate::targets::{GuardedResolver, TargetPolicy};
use crate::webhook::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Signer};

/// When to try a failed delivery again, and when to give up on it.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; then the delivery goes to the dead-letter list.
    pub max_attempts: u32,
    /// Wait after the first failure; each further failure multiplies it by `factor`.
    pub first_delay: Duration,
    pub factor: u32,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts over about 9 hours: 10 s, 40 s, 2.7 min, 11 min, 43 min, 2.8 h, 6 h.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_delay: Duration::from_secs(10),
            factor: 4,
            max_delay: Duration::from_secs(6 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The fate of a delivery after its `attempts`-th attempt failed at `now_ms`. `jitter`
    /// in `[0, 1)` spreads retries over ±20% so endpoints coming back are not stampeded.
    pub fn after_failure(&self, attempts: u32, now_ms: i64, jitter: f64) -> DeliveryOutcome {
        if attempts >= self.max_attempts {
            return DeliveryOutcome::Dead;
        }
        let growth = f64::from(self.factor).powi(attempts.saturating_sub(1) as i32);
        let delay = (self.first_delay.as_secs_f64() * growth).min(self.max_delay.as_secs_f64());
        let delay = delay * (0.8 + 0.4 * jitter.clamp(0.0, 1.0));
        DeliveryOutcome::RetryAt(now_ms + (delay * 1000.0) as i64)
    }
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub retry: RetryPolicy,
    /// Per request.
    pub timeout: Duration,
    /// Deliveries in flight per destination (to different profiles).
    pub concurrency: usize,
    /// How often idle tasks look for work written by other processes.
    pub poll: Duration,
    /// Which addresses webhooks may reach (public ones, and any private network allowed).
    pub targets: Arc<TargetPolicy>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            poll: Duration::from_secs(1),
            targets: Arc::default(),
        }
    }
}

struct Shared {
    store: Arc<Store>,
    client: reqwest::Client,
    config: DispatchConfig,
    /// New deliveries were written, or destinations changed.
    wake: Notify,
    /// Set by [`Dispatcher::stop`]: finish the round under way, record it, stop.
    stopping: watch::Sender<bool>,
}

/// Handle on the running dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
    supervisor: Arc<Mutex<Option<JoinHandle<()>>>>,
    _subscription: Arc<Subscription>,
}

impl Dispatcher {
    /// Starts delivering, woken by the bus when the outbox or the destinations change;
    /// must be called inside a Tokio runtime.
    pub fn start(
        store: Arc<Store>,
        config: DispatchConfig,
        bus: &Bus,
    ) -> Result<Dispatcher, ActError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("prossimo/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead anywhere, past the address checks: never followed.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&config.targets),
            }))
            .build()?;
        let shared = Arc::new(Shared {
            store,
            client,
            config,
            wake: Notify::new(),
            stopping: watch::Sender::new(false),
        });
        let woken = Arc::clone(&shared);
        let subscription = bus.subscribe(
            "dispatcher",
            &[Topic::OutboxWritten, Topic::DefinitionsChanged],
            move |happened| match happened {
                Happened::OutboxWritten
                | Happened::DefinitionsChanged(Definitions::Destinations) => {
                    woken.wake.notify_waiters()
                }
                _ => {}
            },
        );
        let supervisor = tokio::spawn(supervise(Arc::clone(&shared)));
        Ok(Dispatcher {
            shared,
            supervisor: Arc::new(Mutex::new(Some(supervisor))),
            _subscription: Arc::new(subscription),
        })
    }

    /// Stops taking new deliveries, lets the rounds in flight finish and be recorded
    /// (each request is bounded by the timeout), gives the lease back.
    pub async fn stop(&self) {
        self.shared.stopping.send_replace(true);
        self.shared.wake.notify_waiters();
        let supervisor = self.supervisor.lock().ok().and_then(|mut s| s.take());
        if let Some(supervisor) = supervisor
            && let Err(e) = supervisor.await
        {
            tracing::error!(error = %e, "the dispatcher's supervisor failed");
        }
    }
}

fn stopping(shared: &Shared) -> bool {
    *shared.stopping.borrow()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("store task failed: {e}"))))
}

/// Keeps one task per enabled destination, restarting a task when its settings change.
async fn supervise(shared: Arc<Shared>) {
    let mut stop = shared.stopping.subscribe();
    // One dispatcher per store, or two nodes would send every delivery twice.
    let _lease = loop {
        if stopping(&shared) {
            return;
        }
        let store = Arc::clone(&shared.store);
        match blocking(move || store.try_lease("dispatcher")).await {
            Ok(Some(lease)) => break lease,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the dispatcher lease; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.config.poll * 5) => {}
            _ = stop.changed() => {}
        }
    };
    let mut running: HashMap<i64, (DestinationRecord, JoinHandle<()>)> = HashMap::new();
    while !stopping(&shared) {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let store = Arc::clone(&shared.store);
        match blocking(move || Destinations::of(&store)?.list()).await {
            Ok(destinations) => {
                let wanted: HashMap<i64, DestinationRecord> = destinations
                    .into_iter()
                    .filter(|d| d.enabled)
                    .map(|d| (d.id, d))
                    .collect();
                running.retain(|id, (record, task)| {
                    let keep = wanted.get(id) == Some(record) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (id, record) in wanted {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(id) {
                        let task =
                            tokio::spawn(run_destination(Arc::clone(&shared), record.clone()));
                        slot.insert((record, task));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read destinations; retrying"),
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(shared.config.poll * 5) => {}
            _ = stop.changed() => {}
        }
    }
    // Each destination's task finishes and records its round; then the lease goes.
    for (_, (_, task)) in running {
        let _ = task.await;
    }
    tracing::info!("dispatcher stopped");
}

async fn run_destination(shared: Arc<Shared>, destination: DestinationRecord) {
    let signer = match Signer::from_secret(&destination.secret) {
        Ok(signer) => Arc::new(signer),
        Err(e) => {
            tracing::error!(destination = %destination.name, error = %e, "destination not started");
            return;
        }
    };
    let destination = Arc::new(destination);
    // A round's attempts are recorded while the next round goes out: recording waits for
    // the store's write lock (behind ingestion and the decider), and a delivery that came
    // due meanwhile should not wait for it. Deliveries sent but not yet recorded are
    // skipped; as only a profile's oldest pending delivery is ever due, a profile's next
    // one waits until the previous is recorded, so each profile stays in order.
    let recording: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let mut recorder: Option<JoinHandle<()>> = None;
    let mut stop = shared.stopping.subscribe();
    loop {
        if stopping(&shared) {
            if let Some(recording) = recorder.take() {
                let _ = recording.await;
            }
            return;
        }
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = shared.store.now_ms();
        let (store, id, limit) = (
            Arc::clone(&shared.store),
            destination.id,
            shared.config.concurrency,
        );
        // Which deliveries were sent but not yet recorded, taken before the outbox is
        // read: a recording that ends after this snapshot may have committed after the
        // read too, so the read can still show its deliveries pending; one that ended
        // before it committed before the read began. Filtering by the set as it is after
        // the read sent a delivery twice when its recording ended in between (seen as a
        // third request for two orders in a server test under load).
        let unrecorded: HashSet<i64> = recording
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default();
        let due = match blocking(move || Destinations::of(&store)?.due_deliveries(id, now, limit))
            .await
        {
            Ok(mut due) => {
                due.retain(|d| !unrecorded.contains(&d.id));
                due
            }
            Err(e) => {
                tracing::warn!(destination = %destination.name, error = %e, "cannot read the outbox");
                tokio::time::sleep(shared.config.poll).await;
                continue;
            }
        };
        if due.is_empty() {
            let store = Arc::clone(&shared.store);
            let next = blocking(move || Destinations::of(&store)?.next_delivery_due(id))
                .await
                .ok()
                .flatten();
            let poll = shared.config.poll.as_millis() as i64;
            let wait = next.map_or(poll, |at| (at - now).clamp(1, poll));
            let recorded = async {
                match recorder.as_mut() {
                    Some(handle) => {
                        let _ = handle.await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                _ = recorded => recorder = None,
                _ = stop.changed() => {}
            }
            continue;
        }
        let mut in_flight = JoinSet::new();
        for delivery in due {
            in_flight.spawn(deliver(
                Arc::clone(&shared),
                Arc::clone(&destination),
                Arc::clone(&signer),
                delivery,
            ));
        }
        let mut attempts = Vec::new();
        while let Some(done) = in_flight.join_next().await {
            if let Ok(attempt) = done {
                attempts.push(attempt);
            }
        }
        // One transaction for the round, one round being recorded at a time.
        if let Some(previous) = recorder.take() {
            let _ = previous.await;
        }
        let ids: Vec<i64> = attempts.iter().map(|(id, _, _)| *id).collect();
        if let Ok(mut recording) = recording.lock() {
            recording.extend(&ids);
        }
        let (store, recording, name) = (
            Arc::clone(&shared.store),
            Arc::clone(&recording),
            destination.name.clone(),
        );
        recorder = Some(tokio::spawn(async move {
            if let Err(e) =
                blocking(move || Destinations::of(&store)?.record_attempts(&attempts)).await
            {
                // The deliveries stay pending and are tried again: at least once, never lost.
                tracing::warn!(destination = %name, error = %e, "cannot record delivery attempts");
            }
            if let Ok(mut recording) = recording.lock() {
                for id in &ids {
                    recording.remove(id);
                }
            }
        }));
    }
}

/// One attempt: POST the signed payload; returns the attempt and what became of the
/// delivery, for the round to record.
async fn deliver(
    shared: Arc<Shared>,
    destination: Arc<DestinationRecord>,
    signer: Arc<Signer>,
    delivery: DeliveryRecord,
) -> (i64, AttemptRecord, DeliveryOutcome) {
    let body = delivery.payload.to_string();
    let now = shared.store.now_ms();
    let signature = signer.sign(&delivery.webhook_id, now / 1000, body.as_bytes());
    let started = Instant::now();
    // The URL's own address is checked here (a name's addresses by the resolver): the
    // policy may have changed since the destination was saved.
    if let Err(why) = shared.config.targets.check_url(&destination.url) {
        return failed(&shared, &destination, &delivery, now, started, why);
    }
    let sent = shared
        .client
        .post(&destination.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_ID, &delivery.webhook_id)
        .header(HEADER_TIMESTAMP, (now / 1000).to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(body)
        .send()
        .await;
    let (status_code, error) = match sent {
        Ok(response) if response.status().is_success() => {
            (Some(i64::from(response.status().as_u16())), None)
        }
        Ok(response) => {
            let code = response.status().as_u16();
            let snippet = reply_snippet(response).await;
            (
                Some(i64::from(code)),
                Some(format!("HTTP {code}: {snippet}")),
            )
        }
        Err(e) => (None, Some(describe(&e))),
    };
    settle(
        &shared,
        &destination,
        &delivery,
        now,
        started,
        status_code,
        error,
    )
}

/// What a failed attempt that sent nothing comes to.
fn failed(
    shared: &Shared,
    destination: &DestinationRecord,
    delivery: &DeliveryRecord,
    now: i64,
    started: Instant,
    why: String,
) -> (i64, AttemptRecord, DeliveryOutcome) {
    settle(shared, destination, delivery, now, started, None, Some(why))
}

/// Records an attempt and decides the delivery's fate: delivered, retried later, or dead.
fn settle(
    shared: &Shared,
    destination: &DestinationRecord,
    delivery: &DeliveryRecord,
    now: i64,
    started: Instant,
    status_code: Option<i64>,
    error: Option<String>,
) -> (i64, AttemptRecord, DeliveryOutcome) {
    let attempt = AttemptRecord {
        at: now,
        status_code,
        duration_ms: started.elapsed().as_millis() as i64,
        error,
    };
    let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
    let outcome = if attempt.error.is_none() {
        DeliveryOutcome::Delivered
    } else {
        let jitter = rand::rng().random::<f64>();
        shared
            .config
            .retry
            .after_failure(attempts, shared.store.now_ms(), jitter)
    };
    if let Some(error) = &attempt.error {
        tracing::info!(destination = %destination.name, delivery = delivery.id, attempts, %error, ?outcome, "delivery failed");
    }
    (delivery.id, attempt, outcome)
}

/// The most of a refusing endpoint's reply that is read and shown back (the deliveries
/// API shows it to admins): enough to tell why, never a whole page from elsewhere.
const REPLY_SNIPPET_BYTES: usize = 200;

/// The start of a reply's body, read no further than needed, as text.
async fn reply_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < REPLY_SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let truncated = bytes.len() > REPLY_SNIPPET_BYTES;
    bytes.truncate(REPLY_SNIPPET_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if truncated {
        text.push('…');
    }
    text
}

/// reqwest's top-level message hides the cause ("error sending request"): add the chain.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_gives_up() {
        let policy = RetryPolicy::default();
        let at = |attempts| match policy.after_failure(attempts, 0, 0.5) {
            DeliveryOutcome::RetryAt(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(1), 10_000);
        assert_eq!(at(2), 40_000);
        assert_eq!(at(3), 160_000);
        assert_eq!(at(7), 6 * 3600 * 1000, "capped");
        assert_eq!(policy.after_failure(8, 0, 0.5), DeliveryOutcome::Dead);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::default();
        for jitter in [0.0, 0.999] {
            let DeliveryOutcome::RetryAt(t) = policy.after_failure(1, 0, jitter) else {
                panic!()
            };
            assert!((8_000..=12_000).contains(&t), "{t}");
        }
    }
}
