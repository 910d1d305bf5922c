//! Which destination is owed what: segment destinations get the entries and exits of their
//! segments, event destinations the events their filter accepts.

use std::collections::BTreeSet;

use prossimo_act::destinations::{DestinationKind, DestinationRecord, Destinations, NewDelivery};
use prossimo_bus::MembershipChange;
use prossimo_model::format_millis;
use prossimo_segments::{Catalog, EventFacts};
use prossimo_store::{LoggedEvent, Store};
use serde_json::{Map, Value, json};

use crate::{DecideError, schema};

/// An event filter is the inside of an aggregate: a source and an optional `where`
/// (`event "Order Completed" where channel == "store"`). It is checked as the term of a
/// one-segment catalog; the newlines keep the user's line and column numbers (minus one
/// line) in errors.
fn filter_catalog(filter: &str) -> Result<Catalog, DecideError> {
    let wrapped = format!("count(\n{filter}\n) >= 0");
    let catalog = Catalog::new([("filter", wrapped.as_str())], &schema()).map_err(|e| {
        let text = match &e {
            prossimo_segments::CatalogError::Definition { error, .. } => format!(
                "event filter, line {}, column {}: {}",
                error.line().saturating_sub(1).max(1),
                error.column(),
                error.message()
            ),
            other => other.to_string(),
        };
        DecideError::Filter(text)
    })?;
    if catalog.terms().iter().any(|t| t.window_ms().is_some()) {
        return Err(DecideError::Filter(
            "event filter: a stream filter takes no `within` window".into(),
        ));
    }
    Ok(catalog)
}

/// Checks an event destination's filter before it is saved.
pub fn check_event_filter(filter: &str) -> Result<(), DecideError> {
    filter_catalog(filter).map(|_| ())
}

/// An event filter ready to test events with (`properties.total > 50 and channel ==
/// "web"`, the inside of an aggregate's `where`): a journey's trigger, wait or goal.
pub struct EventFilter(Catalog);

impl EventFilter {
    /// Compiles the `where` of an event match (the segment language's filter).
    pub fn new(filter: &str) -> Result<EventFilter, DecideError> {
        filter_catalog(&format!("any event where\n{filter}")).map(EventFilter)
    }

    pub fn accepts(&self, event: &LoggedEvent) -> bool {
        self.0.matching_terms(&crate::facts(event)).next().is_some()
    }
}

struct SegmentRoute {
    destination_id: i64,
    /// None: every segment.
    slugs: Option<BTreeSet<String>>,
}

struct EventRoute {
    destination_id: i64,
    created_at: i64,
    /// None: every event.
    filter: Option<Catalog>,
}

#[derive(Default)]
pub(crate) struct Routes {
    segments: Vec<SegmentRoute>,
    events: Vec<EventRoute>,
}

impl Routes {
    pub(crate) fn load(store: &Store) -> Result<Routes, DecideError> {
        let mut routes = Routes::default();
        for d in Destinations::of(store)?
            .list()?
            .into_iter()
            .filter(|d| d.enabled)
        {
            routes.add(d);
        }
        Ok(routes)
    }

    fn add(&mut self, d: DestinationRecord) {
        let filter = d.filter.as_deref().map(str::trim).filter(|f| !f.is_empty());
        match d.kind {
            DestinationKind::Segments => self.segments.push(SegmentRoute {
                destination_id: d.id,
                slugs: filter.map(|f| {
                    f.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                }),
            }),
            DestinationKind::Events => match filter.map(filter_catalog).transpose() {
                Ok(filter) => self.events.push(EventRoute {
                    destination_id: d.id,
                    created_at: d.created_at,
                    filter,
                }),
                // Saved filters are checked first; one that no longer compiles (a newer
                // language) must not stop the others.
                Err(e) => {
                    tracing::error!(destination = %d.name, error = %e, "destination skipped")
                }
            },
            // Sent to by journeys' webhook messages, not routed here.
            DestinationKind::Messages => {}
        }
    }

    pub(crate) fn has_segment_routes(&self) -> bool {
        !self.segments.is_empty()
    }

    pub(crate) fn has_event_routes(&self) -> bool {
        !self.events.is_empty()
    }

    pub(crate) fn for_change(
        &self,
        change: &MembershipChange,
        traits: Option<&Map<String, Value>>,
        out: &mut Vec<NewDelivery>,
    ) {
        let (kind, verb) = if change.entered {
            ("segment.entered", "in")
        } else {
            ("segment.exited", "out")
        };
        for route in &self.segments {
            if route
                .slugs
                .as_ref()
                .is_some_and(|s| !s.contains(&change.segment_slug))
            {
                continue;
            }
            let at = format_millis(change.at).unwrap_or_default();
            out.push(NewDelivery {
                destination_id: route.destination_id,
                profile_id: change.profile_id,
                webhook_id: format!(
                    "msg_seg_{}_{}_{}_{verb}",
                    change.segment_id, change.profile_id, change.at
                ),
                payload: json!({
                    "type": kind,
                    "timestamp": at,
                    "data": {
                        "segment": change.segment_slug,
                        "segment_id": change.segment_id,
                        "profile_id": change.profile_id,
                        "entered": change.entered,
                        "at": at,
                        "traits": traits.cloned().unwrap_or_default(),
                    }
                }),
            });
        }
    }

    /// A destination is sent the events received after it was created, not history.
    pub(crate) fn for_event(&self, event: &LoggedEvent, out: &mut Vec<NewDelivery>) {
        let facts = EventFacts {
            kind: &event.kind,
            event: event.event.as_deref(),
            channel: &event.channel,
            ts_ms: event.ts,
            properties: &event.properties,
            platform: event.platform,
        };
        for route in &self.events {
            if event.received_at < route.created_at {
                continue;
            }
            if let Some(filter) = &route.filter
                && filter.matching_terms(&facts).next().is_none()
            {
                continue;
            }
            out.push(NewDelivery {
                destination_id: route.destination_id,
                profile_id: event.profile_id,
                webhook_id: format!("msg_evt_{}", event.seq),
                payload: json!({
                    "type": "event",
                    "timestamp": format_millis(event.ts).unwrap_or_default(),
                    "data": {
                        "messageId": event.message_id,
                        "type": event.kind,
                        "event": event.event,
                        "channel": event.channel,
                        "timestamp": format_millis(event.ts).unwrap_or_default(),
                        "profile_id": event.profile_id,
                        "properties": event.properties,
                    }
                }),
            });
        }
    }
}
