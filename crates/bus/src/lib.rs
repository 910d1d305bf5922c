//! The internal bus. Services never call each other by name: each publishes what happened
//! and subscribes to what it needs. The durable truth is always in the store (logs with
//! positions); the bus only wakes, so a subscriber that misses a message loses nothing it
//! cannot read back, and one that is woken twice does its work once.
//!
//! Delivery is synchronous and in publication order: `publish` calls every subscriber of
//! the topic on the publishing thread. A subscriber must therefore only hand the message
//! to its own queue (a channel, a `Notify`) and return; it never does the work there.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use prossimo_identity::{Identifier, ProfileId};

/// A profile entering or leaving a segment at `at` (ms): what the decider decides, what
/// the audiences' log keeps and what destinations and journeys hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub segment_id: i64,
    pub segment_slug: String,
    pub profile_id: ProfileId,
    pub entered: bool,
    pub at: i64,
    /// Part of a new segment's first evaluation: the membership is written, but no
    /// `Segment Entered` event goes on the timeline (a segment's birth is not something
    /// each of its members did).
    pub first_fill: bool,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Happened {
    /// A group commit stored new events; `buyers` are the people whose orders were among
    /// them (by an identifier each), so their scores can be refreshed at once.
    EventsCommitted { buyers: Arc<[Identifier]> },
    /// Computed traits were rewritten for these profiles (`None`: for everyone, after a full
    /// analysis run).
    ComputedTraitsChanged { profiles: Option<Arc<[ProfileId]>> },
    /// Membership changes were committed (entries and exits, in order).
    MembershipsChanged { changes: Arc<[MembershipChange]> },
    /// Someone saved, changed or deleted definitions of this kind.
    DefinitionsChanged(Definitions),
    /// Deliveries were written to the outbox (or put back in it for a replay).
    OutboxWritten,
    /// Someone asked for a full analysis run (the console's "run again").
    AnalysisRequested,
    /// Messages were owed (a journey's send step, a test send).
    MessagesOwed,
}

/// The kinds of definitions a person edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Definitions {
    Segments,
    Destinations,
    Journeys,
    Messages,
}

/// What a subscriber can ask for: one per kind of [`Happened`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    EventsCommitted,
    ComputedTraitsChanged,
    MembershipsChanged,
    DefinitionsChanged,
    OutboxWritten,
    AnalysisRequested,
    MessagesOwed,
}

impl Happened {
    pub fn topic(&self) -> Topic {
        match self {
            Happened::EventsCommitted { .. } => Topic::EventsCommitted,
            Happened::ComputedTraitsChanged { .. } => Topic::ComputedTraitsChanged,
            Happened::MembershipsChanged { .. } => Topic::MembershipsChanged,
            Happened::DefinitionsChanged(_) => Topic::DefinitionsChanged,
            Happened::OutboxWritten => Topic::OutboxWritten,
            Happened::AnalysisRequested => Topic::AnalysisRequested,
            Happened::MessagesOwed => Topic::MessagesOwed,
        }
    }
}

type Deliver = Arc<dyn Fn(&Happened) + Send + Sync>;

struct Subscriber {
    id: u64,
    name: &'static str,
    topics: Vec<Topic>,
    deliver: Deliver,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    next_id: AtomicU64,
}

/// The bus; clones share it.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .inner
            .subscribers
            .read()
            .map(|s| s.iter().map(|s| s.name).collect())
            .unwrap_or_default();
        f.debug_struct("Bus").field("subscribers", &names).finish()
    }
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Tells every subscriber of the message's topic, in the order they subscribed.
    pub fn publish(&self, happened: Happened) {
        let topic = happened.topic();
        // Delivered outside the lock, so a subscriber may subscribe or publish in turn.
        let targets: Vec<Deliver> = match self.inner.subscribers.read() {
            Ok(subscribers) => subscribers
                .iter()
                .filter(|s| s.topics.contains(&topic))
                .map(|s| Arc::clone(&s.deliver))
                .collect(),
            Err(_) => return,
        };
        for deliver in targets {
            deliver(&happened);
        }
    }

    /// Calls `deliver` with every message of these topics until the returned
    /// [`Subscription`] is dropped. `name` says who listens, for logs and debugging.
    pub fn subscribe(
        &self,
        name: &'static str,
        topics: &[Topic],
        deliver: impl Fn(&Happened) + Send + Sync + 'static,
    ) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut subscribers) = self.inner.subscribers.write() {
            subscribers.push(Subscriber {
                id,
                name,
                topics: topics.to_vec(),
                deliver: Arc::new(deliver),
            });
        }
        tracing::debug!(subscriber = name, ?topics, "subscribed");
        Subscription {
            bus: Arc::downgrade(&self.inner),
            id,
        }
    }

    /// How many subscribers listen to `topic`.
    pub fn subscribers(&self, topic: Topic) -> usize {
        self.inner
            .subscribers
            .read()
            .map(|s| s.iter().filter(|s| s.topics.contains(&topic)).count())
            .unwrap_or(0)
    }
}

/// A subscription; dropping it stops the deliveries.
#[must_use = "dropping a subscription ends it"]
pub struct Subscription {
    bus: std::sync::Weak<Inner>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade()
            && let Ok(mut subscribers) = inner.subscribers.write()
        {
            subscribers.retain(|s| s.id != self.id);
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn subscribers_get_their_topics_in_order_until_they_unsubscribe() {
        let bus = Bus::new();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = |who: &'static str| {
            let seen = Arc::clone(&seen);
            move |h: &Happened| seen.lock().unwrap().push(format!("{who}: {:?}", h.topic()))
        };
        let outbox = bus.subscribe("dispatcher", &[Topic::OutboxWritten], log("dispatcher"));
        let definitions = bus.subscribe(
            "decider",
            &[Topic::DefinitionsChanged, Topic::EventsCommitted],
            log("decider"),
        );
        bus.publish(Happened::EventsCommitted {
            buyers: Arc::new([]),
        });
        bus.publish(Happened::OutboxWritten);
        bus.publish(Happened::DefinitionsChanged(Definitions::Segments));
        bus.publish(Happened::ComputedTraitsChanged { profiles: None });
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "decider: EventsCommitted",
                "dispatcher: OutboxWritten",
                "decider: DefinitionsChanged"
            ]
        );
        assert_eq!(bus.subscribers(Topic::OutboxWritten), 1);
        drop(outbox);
        assert_eq!(bus.subscribers(Topic::OutboxWritten), 0);
        bus.publish(Happened::OutboxWritten);
        assert_eq!(seen.lock().unwrap().len(), 3);
        drop(definitions);
    }

    #[test]
    fn a_subscriber_may_publish_in_turn() {
        let bus = Bus::new();
        let relay = bus.clone();
        let count = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&count);
        let _relay = bus.subscribe("relay", &[Topic::MembershipsChanged], move |_| {
            relay.publish(Happened::OutboxWritten)
        });
        let _counter = bus.subscribe("counter", &[Topic::OutboxWritten], move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        bus.publish(Happened::MembershipsChanged {
            changes: Arc::new([]),
        });
        assert_eq!(count.load(Ordering::Relaxed), 1);
    }
}
