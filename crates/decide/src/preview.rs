//! Checking a definition against the saved segments, and previewing it (size and sample)
//! without saving.

use std::collections::HashMap;

use prossimo_identity::ProfileId;
use prossimo_segments::{Catalog, ProfileAggregates, SegmentSet};
use prossimo_store::Store;
use serde::Serialize;

use crate::audiences::Audiences;
use crate::engine::{TermScan, facts, load_catalog, view_of};
use crate::{DecideError, schema};

/// The slug an unsaved definition is checked and previewed under: saved slugs start with
/// a letter or a digit, so it clashes with none and a draft may refer to any of them.
pub use prossimo_segments::DRAFT_SLUG;

/// Checks a definition that is not saved yet against the saved segments.
pub fn check_draft(store: &Store, definition: &str) -> Result<Catalog, DecideError> {
    check_catalog(store, DRAFT_SLUG, Some(definition))
}

/// The saved segments with `slug` given `definition` (added or replaced), or without it
/// when `definition` is `None`; an error names the broken definition or the cycle.
pub fn check_catalog(
    store: &Store,
    slug: &str,
    definition: Option<&str>,
) -> Result<Catalog, DecideError> {
    // Before parsing: a megabyte of conditions is refused, not parsed.
    if let Some(definition) = definition
        && definition.len() > prossimo_store::MAX_DEFINITION_BYTES
    {
        return Err(prossimo_store::StoreError::TooLong {
            field: "definition",
            bytes: definition.len(),
            max: prossimo_store::MAX_DEFINITION_BYTES,
        }
        .into());
    }
    let mut definitions: Vec<(String, String)> = Audiences::of(store)?
        .segments()?
        .into_iter()
        .filter(|s| s.slug != slug)
        .map(|s| (s.slug, s.definition))
        .collect();
    if let Some(definition) = definition {
        definitions.push((slug.to_owned(), definition.to_owned()));
    }
    Ok(Catalog::new(definitions, &schema())?)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// Profiles the definition holds for now.
    pub count: u64,
    /// The first of them by profile id.
    pub sample: Vec<ProfileId>,
    /// Profiles evaluated.
    pub profiles: u64,
}

/// Evaluates `definition` over every profile at `now_ms`. References to saved segments
/// read their stored memberships.
pub fn preview(
    store: &Store,
    definition: &str,
    now_ms: i64,
    sample_size: usize,
) -> Result<Preview, DecideError> {
    let (_, saved) = load_catalog(Audiences::of(store)?.segments()?)?;
    // Saved segments are only referred to (their stored memberships are read), never
    // evaluated here: stand-ins without terms keep the scan to the draft's own terms.
    let mut definitions: Vec<(&str, &str)> = saved
        .iter()
        .map(|s| (s.slug.as_str(), "first_seen exists"))
        .collect();
    definitions.push((DRAFT_SLUG, definition));
    let catalog = Catalog::new(definitions, &schema())?;
    let draft = catalog
        .id(DRAFT_SLUG)
        .ok_or_else(|| DecideError::Filter("draft segment missing from its catalog".into()))?;
    let only = {
        let mut set = SegmentSet::new();
        set.insert(draft);
        set
    };

    let mut aggregates: HashMap<ProfileId, ProfileAggregates> = HashMap::new();
    if !catalog.terms().is_empty() {
        let head = store.log_heads()?.event_seq;
        let terms = TermScan::of(&catalog, now_ms);
        store.scan_events(&terms.scan(head), &mut |e| {
            aggregates
                .entry(e.profile_id)
                .or_default()
                .observe(&catalog, &facts(&e), now_ms);
            Ok(())
        })?;
    }

    let slug_of: HashMap<i64, &str> = saved.iter().map(|s| (s.id, s.slug.as_str())).collect();
    let mut memberships: HashMap<ProfileId, SegmentSet> = HashMap::new();
    for (segment, profile) in Audiences::of(store)?.current_memberships()? {
        if let Some(id) = slug_of.get(&segment).and_then(|slug| catalog.id(slug)) {
            memberships.entry(profile).or_default().insert(id);
        }
    }

    let mut result = Preview {
        count: 0,
        sample: Vec::new(),
        profiles: 0,
    };
    let (empty_aggregates, no_memberships) = (ProfileAggregates::new(), SegmentSet::new());
    store.for_each_profile_facts(&mut |f| {
        let view = view_of(
            &f,
            aggregates.get(&f.id).unwrap_or(&empty_aggregates),
            memberships.get(&f.id).unwrap_or(&no_memberships),
        );
        result.profiles += 1;
        if catalog
            .evaluate(&view, now_ms, Some(&only))
            .members
            .contains(draft)
        {
            result.count += 1;
            if result.sample.len() < sample_size {
                result.sample.push(f.id);
            }
        }
        Ok(())
    })?;
    Ok(result)
}

/// Conditions in the segment language evaluated for one person at a time: the journeys'
/// entry conditions, branches, waits and exit criteria. Saved segments named in them
/// (`segment "vip"`) read the person's stored memberships, as in a preview.
pub struct Conditions {
    catalog: Catalog,
    /// The catalog's id of each condition, by its text.
    ids: HashMap<String, prossimo_segments::SegmentId>,
    /// The saved segments' catalog ids, by their store id.
    saved: HashMap<i64, prossimo_segments::SegmentId>,
}

impl Conditions {
    /// Compiles `conditions` (checked already) beside the saved segments.
    pub fn new<'c>(
        store: &Store,
        conditions: impl IntoIterator<Item = &'c str>,
    ) -> Result<Conditions, DecideError> {
        let (_, saved) = load_catalog(Audiences::of(store)?.segments()?)?;
        let texts: Vec<&str> = {
            let mut seen = std::collections::BTreeSet::new();
            conditions.into_iter().filter(|c| seen.insert(*c)).collect()
        };
        // Named like segments (the catalog's rule), apart from every saved one.
        let taken: std::collections::HashSet<&str> =
            saved.iter().map(|s| s.slug.as_str()).collect();
        let slugs: Vec<String> = (0..texts.len())
            .map(|i| {
                let mut slug = format!("condition-{i}");
                while taken.contains(slug.as_str()) {
                    slug.push_str("-x");
                }
                slug
            })
            .collect();
        let mut definitions: Vec<(&str, &str)> = saved
            .iter()
            .map(|s| (s.slug.as_str(), "first_seen exists"))
            .collect();
        definitions.extend(slugs.iter().map(String::as_str).zip(texts.iter().copied()));
        let catalog = Catalog::new(definitions, &schema())?;
        let ids = texts
            .iter()
            .zip(&slugs)
            .filter_map(|(text, slug)| Some(((*text).to_owned(), catalog.id(slug)?)))
            .collect();
        let saved = saved
            .iter()
            .filter_map(|s| Some((s.id, catalog.id(&s.slug)?)))
            .collect();
        Ok(Conditions {
            catalog,
            ids,
            saved,
        })
    }

    /// The conditions that hold for `person` (a root profile, whose facts the caller has
    /// read) at `now_ms`, from its stored events, traits and computed traits, and its
    /// current memberships.
    pub fn holding_for(
        &self,
        store: &Store,
        person: &prossimo_store::ProfileFacts,
        now_ms: i64,
    ) -> Result<std::collections::BTreeSet<String>, DecideError> {
        if self.ids.is_empty() {
            return Ok(Default::default());
        }
        let profile = person.id;
        let mut aggregates = ProfileAggregates::new();
        if !self.catalog.terms().is_empty() {
            for e in store.events_of(profile)? {
                aggregates.observe(&self.catalog, &facts(&e), now_ms);
            }
        }
        let mut members = SegmentSet::new();
        for m in Audiences::of(store)?.memberships_of(profile)? {
            if m.exited_at.is_none()
                && let Some(&id) = self.saved.get(&m.segment_id)
            {
                members.insert(id);
            }
        }
        let evaluated = self
            .catalog
            .evaluate(&view_of(person, &aggregates, &members), now_ms, None)
            .members;
        Ok(self
            .ids
            .iter()
            .filter(|(_, id)| evaluated.contains(**id))
            .map(|(text, _)| text.clone())
            .collect())
    }
}
