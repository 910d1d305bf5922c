//! The one customer view, composed in one place: the customer core's profile (identities,
//! traits, orders, computed traits, counts) with what each feature knows of the customer
//! (audience memberships today; messages and journeys as they come), and the timeline
//! merged from the stored events and every feature's [`TimelineSource`].
//!
//! The API, the console and the CLI read customers through here, so a feature that adds
//! to the timeline adds its source to [`timeline_sources`] once and shows everywhere.

use prossimo_decide::audiences::{Audiences, MembershipRecord};
use prossimo_store::{
    EventPage, EventQuery, Profile360, ProfileKey, Store, StoreError, TimelineSource,
};
use serde::Serialize;

/// Everything known about one person.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CustomerView {
    #[serde(flatten)]
    pub profile: Profile360,
    /// Segment memberships, current (`exited_at` null) and past, newest first.
    pub segments: Vec<MembershipRecord>,
}

/// Every feature's timeline source, in the order entries of one instant are shown (after
/// the stored events).
pub fn timeline_sources(store: &Store) -> Result<Vec<Box<dyn TimelineSource>>, StoreError> {
    // Journeys' events are on the event log itself (see prossimo_journeys::log_journey_events).
    Ok(vec![Box::new(Audiences::of(store)?.timeline())])
}

fn with_sources<T>(
    store: &Store,
    read: impl FnOnce(&[&dyn TimelineSource]) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let sources = timeline_sources(store)?;
    let sources: Vec<&dyn TimelineSource> = sources.iter().map(|s| s.as_ref()).collect();
    read(&sources)
}

/// The profile `key` names, with what every feature knows of it; `None` when there is
/// no such profile.
pub fn customer(store: &Store, key: &ProfileKey) -> Result<Option<CustomerView>, StoreError> {
    let Some(profile) = with_sources(store, |sources| store.profile(key, sources))? else {
        return Ok(None);
    };
    let segments = Audiences::of(store)?.memberships_of(profile.id)?;
    Ok(Some(CustomerView { profile, segments }))
}

/// A page of the customer's timeline, newest first; `None` when there is no such profile.
pub fn timeline(
    store: &Store,
    key: &ProfileKey,
    query: &EventQuery,
) -> Result<Option<EventPage>, StoreError> {
    with_sources(store, |sources| store.timeline(key, query, sources))
}
