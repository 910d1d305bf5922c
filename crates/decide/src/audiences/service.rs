//! Saving and deleting an audience: check, write, announce. The one path the API, the
//! console and the CLI take, so the three cannot drift (the same slug rule, the same
//! checks against the other segments, the same word to the decider).

use prossimo_bus::{Bus, Definitions, Happened};
use prossimo_segments::CatalogError;
use prossimo_store::{Store, StoreError};

use super::{Audiences, SegmentInput, SegmentRecord, check_slug};
use crate::{DecideError, check_catalog};

/// Why an audience was not saved or deleted.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    /// The definition does not parse or check, or the catalog refuses it (a cycle).
    #[error(transparent)]
    Definition(DecideError),
    #[error("no segment {0:?}")]
    NotFound(String),
    /// Another segment refers to the one to delete: without it, `user`'s definition
    /// would fail with `reason`.
    #[error("segment {user:?} refers to {slug:?} ({}); change it first", .reason.message())]
    InUse {
        slug: String,
        user: String,
        reason: Box<prossimo_segments::Error>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Saves `input` as a new segment (`existing` is `None`) or over the segment `existing`
/// names; checked against every saved segment first. A running decider hears of it on
/// `bus` (without one, as in the CLI, it sees the change at its next look at the store).
pub fn save_audience(
    store: &Store,
    bus: Option<&Bus>,
    input: &SegmentInput,
    existing: Option<&str>,
) -> Result<SegmentRecord, AudienceError> {
    check_slug(&input.slug)?;
    check_catalog(store, &input.slug, Some(&input.definition)).map_err(|e| match e {
        DecideError::Store(e) => AudienceError::Store(e),
        other => AudienceError::Definition(other),
    })?;
    let audiences = Audiences::of(store)?;
    let saved = match existing {
        None => audiences.create(input)?,
        Some(slug) => audiences
            .update(slug, input)?
            .ok_or_else(|| AudienceError::NotFound(slug.to_owned()))?,
    };
    announce(bus);
    Ok(saved)
}

/// Deletes the segment `slug`, unless another segment refers to it.
pub fn delete_audience(store: &Store, bus: Option<&Bus>, slug: &str) -> Result<(), AudienceError> {
    let audiences = Audiences::of(store)?;
    if audiences.segment(slug)?.is_none() {
        return Err(AudienceError::NotFound(slug.to_owned()));
    }
    check_catalog(store, slug, None).map_err(|e| match e {
        DecideError::Store(e) => AudienceError::Store(e),
        DecideError::Catalog(CatalogError::Definition { slug: user, error }) => {
            AudienceError::InUse {
                slug: slug.to_owned(),
                user,
                reason: Box::new(error),
            }
        }
        other => AudienceError::Definition(other),
    })?;
    audiences.delete(slug)?;
    announce(bus);
    Ok(())
}

fn announce(bus: Option<&Bus>) {
    if let Some(bus) = bus {
        bus.publish(Happened::DefinitionsChanged(Definitions::Segments));
    }
}
