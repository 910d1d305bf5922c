//! All saved segments, checked together: membership references resolved, cycles refused,
//! a dependency order, the shared aggregate terms and an index from events to terms.

use std::collections::HashMap;

use crate::ast::{Aggregate, Expr, Source, Span, Spanned};
use crate::check::{Lowering, Resolver, Schema, closest};
use crate::error::{Error, Language, text};
use crate::format::aggregate_text;
use crate::lowered::{Node, Op};
use crate::parser::parse;
use crate::slug::{DRAFT_SLUG, check_slug};
use crate::terms::{EventFacts, Term, TermKey};

/// A segment's position in its [`Catalog`] (the order the definitions were given in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub(crate) usize);

impl SegmentId {
    pub fn index(self) -> usize {
        self.0
    }
}

/// A set of segments of one catalog, as a bit set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentSet {
    // No trailing zero words, so the derived equality is set equality.
    words: Vec<u64>,
}

impl SegmentSet {
    pub fn new() -> Self {
        SegmentSet::default()
    }

    pub fn contains(&self, id: SegmentId) -> bool {
        self.words
            .get(id.0 / 64)
            .is_some_and(|w| w & (1 << (id.0 % 64)) != 0)
    }

    pub fn insert(&mut self, id: SegmentId) {
        let word = id.0 / 64;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (id.0 % 64);
    }

    pub fn remove(&mut self, id: SegmentId) {
        if let Some(w) = self.words.get_mut(id.0 / 64) {
            *w &= !(1 << (id.0 % 64));
        }
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }

    pub fn set(&mut self, id: SegmentId, member: bool) {
        if member {
            self.insert(id);
        } else {
            self.remove(id);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = SegmentId> + '_ {
        self.words.iter().enumerate().flat_map(|(i, w)| {
            (0..64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| SegmentId(i * 64 + b))
        })
    }
}

/// What changed on a profile; [`Catalog::affected`] says which segments may follow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Terms an event matched ([`Catalog::matching_terms`]).
    pub terms: Vec<TermKey>,
    /// Top-level trait keys that changed (`address` for `traits.address.city`).
    pub traits: Vec<String>,
    /// Computed traits that changed (`p_alive`).
    pub computed: Vec<String>,
    /// `first_seen`, `last_seen` or `first_channel` changed.
    pub seen: bool,
    /// Segments (by slug) whose membership changed.
    pub segments: Vec<String>,
}

/// Why a set of definitions cannot form a catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("segment \"{slug}\": {error}")]
    Definition { slug: String, error: Error },
    #[error(
        "segment slug {0:?} is invalid (1 to 64 lowercase letters, digits, - and _, starting with a letter or digit; not new or check)"
    )]
    InvalidSlug(String),
    #[error("segment \"{0}\" is defined twice")]
    DuplicateSlug(String),
    /// The path is the cycle, with its first segment repeated at the end.
    #[error("membership cycle: segment {}", quote_path(.path))]
    Cycle { path: Vec<String> },
}

impl CatalogError {
    /// What went wrong in `language`: in English, the error's display.
    pub fn message_in(&self, language: Language) -> String {
        if language == Language::English {
            return self.to_string();
        }
        match self {
            CatalogError::Definition { slug, error } => format!(
                "segmento \"{slug}\": {} alla riga {}, colonna {}",
                error.message_in(language),
                error.line(),
                error.column()
            ),
            CatalogError::InvalidSlug(slug) => match check_slug(slug) {
                Err(why) => why.get(language).to_owned(),
                Ok(()) => format!("lo slug {slug:?} non è valido"),
            },
            CatalogError::DuplicateSlug(slug) => {
                format!("il segmento \"{slug}\" è definito due volte")
            }
            CatalogError::Cycle { path } => {
                format!("ciclo di appartenenza: segmento {}", quote_path(path))
            }
        }
    }
}

fn quote_path(path: &[String]) -> String {
    path.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// What a segment's condition reads, to answer [`Catalog::affected`].
#[derive(Debug, Clone, Default)]
struct Deps {
    terms: Vec<usize>,
    traits: Vec<String>,
    computed: Vec<String>,
    seen: bool,
    segments: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    slug: String,
    source: String,
    expr: Expr,
    pub(crate) node: Node,
    deps: Deps,
}

/// The checked segments of a workspace.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) segments: Vec<Segment>,
    /// Segment indices, every segment after the segments it refers to.
    pub(crate) order: Vec<usize>,
    by_slug: HashMap<String, usize>,
    pub(crate) terms: Vec<Term>,
    term_by_key: HashMap<TermKey, usize>,
    by_event: HashMap<String, Vec<usize>>,
    by_channel: HashMap<String, Vec<usize>>,
    any_event: Vec<usize>,
}

struct Interner<'a> {
    by_slug: &'a HashMap<String, usize>,
    terms: &'a mut Vec<Term>,
    term_by_key: &'a mut HashMap<TermKey, usize>,
}

impl Resolver for Interner<'_> {
    fn term(
        &mut self,
        aggregate: &Aggregate,
        filter: Option<Node>,
        span: Span,
    ) -> Result<usize, Error> {
        let text = aggregate_text(aggregate);
        let key = TermKey::of(&text);
        if let Some(&i) = self.term_by_key.get(&key) {
            return match self.terms.get(i) {
                Some(t) if t.text == text => Ok(i),
                // Two texts, one 64-bit hash: refuse rather than mix their states.
                _ => Err(Error::typing(
                    text!(
                        "term key {key} is shared by two different aggregates",
                        "la chiave {key} è condivisa da due aggregati diversi"
                    ),
                    span,
                )),
            };
        }
        self.terms.push(Term {
            key,
            text,
            aggregate: aggregate.clone(),
            filter,
        });
        self.term_by_key.insert(key, self.terms.len() - 1);
        Ok(self.terms.len() - 1)
    }

    fn segment(&mut self, slug: &Spanned<String>) -> Result<usize, Error> {
        if let Some(&i) = self.by_slug.get(&slug.node) {
            return Ok(i);
        }
        let known = self.by_slug.keys().map(String::as_str);
        let slug_text = &slug.node;
        let message = match closest(slug_text, known) {
            Some(near) => text!(
                "unknown segment \"{slug_text}\"; did you mean \"{near}\"?",
                "segmento \"{slug_text}\" sconosciuto; forse intendevi \"{near}\"?"
            ),
            None => text!(
                "unknown segment \"{slug_text}\"",
                "segmento \"{slug_text}\" sconosciuto"
            ),
        };
        Err(Error::typing(message, slug.span))
    }
}

impl Catalog {
    /// Parses and checks `(slug, source)` pairs: every reference must name one of them and
    /// references must not form a cycle. The first problem is reported.
    pub fn new<I, S, T>(definitions: I, schema: &Schema) -> Result<Catalog, CatalogError>
    where
        I: IntoIterator<Item = (S, T)>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        let definitions: Vec<(String, String)> = definitions
            .into_iter()
            .map(|(s, t)| (s.as_ref().to_owned(), t.as_ref().to_owned()))
            .collect();
        let mut by_slug = HashMap::new();
        for (i, (slug, _)) in definitions.iter().enumerate() {
            // The one slug rule, and the draft a definition is checked under.
            if slug != DRAFT_SLUG && check_slug(slug).is_err() {
                return Err(CatalogError::InvalidSlug(slug.clone()));
            }
            if by_slug.insert(slug.clone(), i).is_some() {
                return Err(CatalogError::DuplicateSlug(slug.clone()));
            }
        }
        let mut terms = Vec::new();
        let mut term_by_key = HashMap::new();
        let mut segments = Vec::with_capacity(definitions.len());
        for (slug, source) in definitions {
            let lowered = parse(&source).and_then(|expr| {
                let mut interner = Interner {
                    by_slug: &by_slug,
                    terms: &mut terms,
                    term_by_key: &mut term_by_key,
                };
                let node = Lowering {
                    schema,
                    resolver: &mut interner,
                }
                .lower(&expr)
                .map_err(|e| e.with_source(&source))?;
                Ok((expr, node))
            });
            let (expr, node) = match lowered {
                Ok(ok) => ok,
                Err(error) => return Err(CatalogError::Definition { slug, error }),
            };
            let mut deps = Deps::default();
            collect_deps(&node, &mut deps);
            for list in [&mut deps.traits, &mut deps.computed] {
                list.sort();
                list.dedup();
            }
            for list in [&mut deps.terms, &mut deps.segments] {
                list.sort_unstable();
                list.dedup();
            }
            segments.push(Segment {
                slug,
                source,
                expr,
                node,
                deps,
            });
        }
        let order = dependency_order(&segments)?;
        let mut catalog = Catalog {
            segments,
            order,
            by_slug,
            terms,
            term_by_key,
            by_event: HashMap::new(),
            by_channel: HashMap::new(),
            any_event: Vec::new(),
        };
        for (i, term) in catalog.terms.iter().enumerate() {
            match &term.aggregate.source {
                Source::Event(name) => catalog.by_event.entry(name.clone()).or_default().push(i),
                Source::Channel(name) => {
                    catalog.by_channel.entry(name.clone()).or_default().push(i);
                }
                Source::AnyEvent => catalog.any_event.push(i),
            }
        }
        Ok(catalog)
    }

    /// The number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Every segment, in dependency order (a segment after those it refers to).
    pub fn segments(&self) -> impl Iterator<Item = SegmentId> + '_ {
        self.order.iter().map(|&i| SegmentId(i))
    }

    pub fn id(&self, slug: &str) -> Option<SegmentId> {
        self.by_slug.get(slug).map(|&i| SegmentId(i))
    }

    pub fn slug(&self, id: SegmentId) -> Option<&str> {
        self.segments.get(id.0).map(|s| s.slug.as_str())
    }

    /// The definition as written.
    pub fn source(&self, id: SegmentId) -> Option<&str> {
        self.segments.get(id.0).map(|s| s.source.as_str())
    }

    pub fn definition(&self, id: SegmentId) -> Option<&Expr> {
        self.segments.get(id.0).map(|s| &s.expr)
    }

    /// The set of the named segments; unknown slugs are skipped.
    pub fn set_of<'s>(&self, slugs: impl IntoIterator<Item = &'s str>) -> SegmentSet {
        let mut set = SegmentSet::new();
        for id in slugs.into_iter().filter_map(|s| self.id(s)) {
            set.insert(id);
        }
        set
    }

    /// The slugs of a set, in catalog order.
    pub fn slugs<'a>(&'a self, set: &'a SegmentSet) -> impl Iterator<Item = &'a str> + 'a {
        set.iter().filter_map(|id| self.slug(id))
    }

    /// Every aggregate term of every segment, each once.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    pub fn term(&self, key: TermKey) -> Option<&Term> {
        self.term_by_key.get(&key).and_then(|&i| self.terms.get(i))
    }

    /// The terms whose source and filter accept `event`. Only the terms indexed under the
    /// event's name and channel (and `any event` terms) are tested.
    pub fn matching_terms<'s>(
        &'s self,
        event: &'s EventFacts<'s>,
    ) -> impl Iterator<Item = TermKey> + 's {
        self.matching(event).map(Term::key)
    }

    pub(crate) fn matching<'s>(
        &'s self,
        event: &'s EventFacts<'_>,
    ) -> impl Iterator<Item = &'s Term> + 's {
        let by_event = event
            .event
            .and_then(|name| self.by_event.get(name))
            .map_or(&[][..], Vec::as_slice);
        let (by_channel, any_event) = if event.platform {
            (&[][..], &[][..])
        } else {
            (
                self.by_channel
                    .get(event.channel)
                    .map_or(&[][..], Vec::as_slice),
                self.any_event.as_slice(),
            )
        };
        by_event
            .iter()
            .chain(by_channel)
            .chain(any_event)
            .filter_map(|&i| self.terms.get(i))
            .filter(move |t| t.accepts(event))
    }

    /// The segments whose membership can change after `change`, including every segment
    /// that refers to one of them through `segment "..."`.
    pub fn affected(&self, change: &Change) -> SegmentSet {
        let mut set = SegmentSet::new();
        let changed_terms: Vec<usize> = change
            .terms
            .iter()
            .filter_map(|k| self.term_by_key.get(k).copied())
            .collect();
        for &i in &self.order {
            let Some(segment) = self.segments.get(i) else {
                continue;
            };
            let d = &segment.deps;
            let hit = d.terms.iter().any(|t| changed_terms.contains(t))
                || d.traits.iter().any(|k| change.traits.contains(k))
                || d.computed.iter().any(|k| change.computed.contains(k))
                || (d.seen && change.seen)
                || d.segments.iter().any(|&s| {
                    // Dependency order: `s` was decided before `i`.
                    set.contains(SegmentId(s))
                        || self
                            .segments
                            .get(s)
                            .is_some_and(|seg| change.segments.contains(&seg.slug))
                });
            if hit {
                set.insert(SegmentId(i));
            }
        }
        set
    }
}

fn collect_deps(node: &Node, deps: &mut Deps) {
    let operand = |op: &Op, deps: &mut Deps| match op {
        Op::Trait(keys) => deps.traits.extend(keys.first().cloned()),
        Op::Computed(name) => deps.computed.push(name.clone()),
        Op::FirstSeen | Op::LastSeen | Op::FirstChannel => deps.seen = true,
        Op::Term(i) => deps.terms.push(*i),
        Op::Lit(_) | Op::Property(_) | Op::Channel | Op::Event | Op::Type => {}
    };
    match node {
        Node::Or(l, r) | Node::And(l, r) => {
            collect_deps(l, deps);
            collect_deps(r, deps);
        }
        Node::Not(inner) => collect_deps(inner, deps),
        Node::Member(i) => deps.segments.push(*i),
        Node::Test(op) | Node::In(op, ..) | Node::Exists(op, _) | Node::Time(op, ..) => {
            operand(op, deps);
        }
        Node::Compare(l, _, r) | Node::Text(l, _, r) => {
            operand(l, deps);
            operand(r, deps);
        }
    }
}

/// Segment indices with every segment after those it refers to; a cycle is an error naming
/// its segments.
fn dependency_order(segments: &[Segment]) -> Result<Vec<usize>, CatalogError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; segments.len()];
    let mut order = Vec::with_capacity(segments.len());
    let refs = |i: usize| {
        segments
            .get(i)
            .map_or(&[][..], |s| s.deps.segments.as_slice())
    };
    for root in 0..segments.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Depth-first with an explicit stack of (segment, next reference to visit).
        let mut stack = vec![(root, 0)];
        mark[root] = Mark::OnPath;
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            match refs(node).get(next).copied() {
                Some(child) => {
                    top.1 += 1;
                    match mark[child] {
                        Mark::New => {
                            mark[child] = Mark::OnPath;
                            stack.push((child, 0));
                        }
                        Mark::OnPath => {
                            let start = stack.iter().position(|&(n, _)| n == child).unwrap_or(0);
                            let mut path: Vec<String> = stack[start..]
                                .iter()
                                .map(|&(n, _)| segments[n].slug.clone())
                                .collect();
                            path.push(segments[child].slug.clone());
                            return Err(CatalogError::Cycle { path });
                        }
                        Mark::Done => {}
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    order.push(node);
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}
