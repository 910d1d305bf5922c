//! Profile evaluation: every segment of a catalog over one profile, in dependency order,
//! and the next instant at which time alone can change an answer.

use serde_json::{Map, Value};

use crate::aggregates::ProfileAggregates;
use crate::catalog::{Catalog, SegmentId, SegmentSet};
use crate::lowered::{Env, Op, Val, eval, lookup_in, time_flips};

/// What evaluation reads about one profile.
#[derive(Debug, Clone, Copy)]
pub struct ProfileView<'a> {
    pub traits: &'a Map<String, Value>,
    /// Computed traits (`p_alive`, `rfm_segment`, …) by name.
    pub computed: &'a Map<String, Value>,
    /// Milliseconds since the Unix epoch.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub first_channel: Option<&'a str>,
    pub aggregates: &'a ProfileAggregates,
    /// The profile's current memberships, read by `segment "..."` for segments that are
    /// not evaluated in this call.
    pub memberships: &'a SegmentSet,
}

struct ProfileEnv<'a> {
    view: &'a ProfileView<'a>,
    catalog: &'a Catalog,
    members: &'a SegmentSet,
    now: i64,
}

impl Env for ProfileEnv<'_> {
    fn value(&self, op: &Op) -> Val<'_> {
        let v = self.view;
        match op {
            Op::Trait(keys) => Val::from_json(lookup_in(v.traits, keys)),
            Op::Computed(name) => Val::from_json(v.computed.get(name)),
            Op::FirstSeen => v.first_seen.map_or(Val::Missing, Val::Date),
            Op::LastSeen => v.last_seen.map_or(Val::Missing, Val::Date),
            Op::FirstChannel => v.first_channel.map_or(Val::Missing, Val::Str),
            Op::Term(i) => self.catalog.terms.get(*i).map_or(Val::Missing, |t| {
                Val::from_agg(v.aggregates.value(t, self.now))
            }),
            // The checker keeps event operands inside aggregate filters.
            _ => Val::Missing,
        }
    }

    fn member(&self, segment: usize) -> bool {
        self.members.contains(SegmentId(segment))
    }

    fn now(&self) -> i64 {
        self.now
    }
}

/// The result of [`Catalog::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memberships {
    /// Every segment the profile is in: fresh results for the evaluated segments, the
    /// view's memberships for the others.
    pub members: SegmentSet,
    /// The segments evaluated in this call.
    pub evaluated: SegmentSet,
}

impl Catalog {
    /// Evaluates every segment (or those in `only`) for one profile at `now_ms`, in
    /// dependency order, so `segment "x"` reads the result computed in the same call.
    pub fn evaluate(
        &self,
        view: &ProfileView,
        now_ms: i64,
        only: Option<&SegmentSet>,
    ) -> Memberships {
        let mut members = view.memberships.clone();
        let mut evaluated = SegmentSet::new();
        for &i in &self.order {
            let id = SegmentId(i);
            if only.is_some_and(|set| !set.contains(id)) {
                continue;
            }
            let Some(segment) = self.segments.get(i) else {
                continue;
            };
            let env = ProfileEnv {
                view,
                catalog: self,
                members: &members,
                now: now_ms,
            };
            let on = eval(&segment.node, &env);
            members.set(id, on);
            evaluated.insert(id);
        }
        Memberships { members, evaluated }
    }
}

impl ProfileView<'_> {
    /// The earliest instant after `now_ms` at which time alone could change any segment of
    /// this profile: a windowed event leaving its window (at `ts + window`), a future-dated
    /// event entering (at `ts`), a `before/after <duration>` flipping (at `X + duration`).
    /// `None`: nothing changes until something else happens.
    pub fn next_boundary(&self, catalog: &Catalog, now_ms: i64) -> Option<i64> {
        let mut next = self.aggregates.next_change(catalog, now_ms);
        let env = ProfileEnv {
            view: self,
            catalog,
            members: self.memberships,
            now: now_ms,
        };
        for segment in &catalog.segments {
            time_flips(&segment.node, &env, now_ms, &mut next);
        }
        next
    }
}
