//! Static types and the checker. Checking also lowers the tree into the evaluator's form
//! ([`Node`]), so whatever passed the checker is exactly what gets evaluated.

use std::collections::BTreeMap;

use crate::ast::{
    AggFunc, Aggregate, Builtin, Expr, Field, Literal, Operand, PathRoot, Span, Spanned, TextOp,
    TimeRef,
};
use crate::error::Language::{English, Italian};
use crate::error::{Error, Text, text};
use crate::format::{write_literal, write_operand};
use crate::lowered::{Lit, Node, Op};
use crate::parser::parse;

/// The static type of an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    Number,
    String,
    Bool,
    Date,
    Duration,
    List,
    /// A trait or property: whatever the JSON holds, known only at run time.
    Dynamic,
}

impl Type {
    fn article(self) -> Text {
        match self {
            Type::Number => text!("a number", "un numero"),
            Type::String => text!("a string", "una stringa"),
            Type::Bool => text!("a true/false value", "un valore true/false"),
            Type::Date => text!("a date", "una data"),
            Type::Duration => text!("a duration", "una durata"),
            Type::List => text!("a list", "una lista"),
            Type::Dynamic => text!(
                "a trait or property value",
                "il valore di un tratto o di una proprietà"
            ),
        }
    }
}

/// The computed traits a definition can name, with their types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    computed: BTreeMap<String, Type>,
}

impl Schema {
    pub fn new() -> Self {
        Schema::default()
    }

    /// Adds (or retypes) a computed trait.
    pub fn with(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.computed.insert(name.into(), ty);
        self
    }

    /// The computed traits the analyses write (`prossimo-understand`).
    pub fn product_default() -> Self {
        Schema::new()
            .with("rfm_score", Type::String)
            .with("rfm_segment", Type::String)
            .with("p_alive", Type::Number)
            .with("expected_purchases_90d", Type::Number)
            .with("clv_12m", Type::Number)
            .with("cluster", Type::Number)
    }

    pub fn get(&self, name: &str) -> Option<Type> {
        self.computed.get(name).copied()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.computed.keys().map(String::as_str)
    }
}

/// Type-checks a parsed definition. Segment references are not resolved here (the
/// [`crate::Catalog`] does that); errors carry no source line (see [`compile`]).
pub fn check(expr: &Expr, schema: &Schema) -> Result<(), Error> {
    Lowering {
        schema,
        resolver: &mut CheckOnly,
    }
    .lower(expr)
    .map(drop)
}

/// Parses and checks one definition; errors show the source line.
pub fn compile(src: &str, schema: &Schema) -> Result<Expr, Error> {
    let expr = parse(src)?;
    check(&expr, schema).map_err(|e| e.with_source(src))?;
    Ok(expr)
}

/// What the catalog supplies while lowering: term and segment numbering.
pub(crate) trait Resolver {
    /// The index of the term for `aggregate` (at `span`), whose filter lowered to `filter`.
    fn term(
        &mut self,
        aggregate: &Aggregate,
        filter: Option<Node>,
        span: Span,
    ) -> Result<usize, Error>;
    fn segment(&mut self, slug: &Spanned<String>) -> Result<usize, Error>;
}

/// Numbers nothing: plain type checking.
struct CheckOnly;

impl Resolver for CheckOnly {
    fn term(&mut self, _: &Aggregate, _: Option<Node>, _: Span) -> Result<usize, Error> {
        Ok(0)
    }

    fn segment(&mut self, _: &Spanned<String>) -> Result<usize, Error> {
        Ok(0)
    }
}

/// Whether we are checking the profile condition or an aggregate's `where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Profile,
    Filter,
}

fn a_value() -> Text {
    text!(
        "a value (a number, a string, true/false or a date)",
        "un valore (un numero, una stringa, true/false o una data)"
    )
}

/// `what` where a filter is: a filter sees only the event.
fn outside_filter(what: &Text) -> Text {
    let (en, it) = (what.get(English), what.get(Italian));
    text!(
        "{en} cannot be used inside where: a filter sees only the event (properties.<path>, channel, event, type)",
        "{it} non si può usare dentro where: un filtro vede solo l'evento (properties.<path>, channel, event, type)"
    )
}

/// The checker's walk: types every node and builds its [`Node`].
pub(crate) struct Lowering<'a, R: Resolver + ?Sized> {
    pub(crate) schema: &'a Schema,
    pub(crate) resolver: &'a mut R,
}

/// How an operand is named in messages: aggregates shortened to `count(...)`.
fn describe(operand: &Operand) -> String {
    match operand {
        Operand::Aggregate(a) => format!("{}(...)", a.func.name()),
        other => {
            let mut out = String::new();
            write_operand(&mut out, other);
            out
        }
    }
}

fn found(ty: Type, operand: &Operand) -> Text {
    ty.article()
        .then(&Text::same(format!(" ({})", describe(operand))))
}

impl<R: Resolver + ?Sized> Lowering<'_, R> {
    pub(crate) fn lower(&mut self, expr: &Expr) -> Result<Node, Error> {
        self.expr(expr, Ctx::Profile)
    }

    fn expr(&mut self, expr: &Expr, ctx: Ctx) -> Result<Node, Error> {
        Ok(match expr {
            Expr::Or(l, r) => Node::Or(Box::new(self.expr(l, ctx)?), Box::new(self.expr(r, ctx)?)),
            Expr::And(l, r) => {
                Node::And(Box::new(self.expr(l, ctx)?), Box::new(self.expr(r, ctx)?))
            }
            Expr::Not(inner) => Node::Not(Box::new(self.expr(inner, ctx)?)),
            condition => self.condition(condition, ctx)?,
        })
    }

    /// A condition other than and, or, not. A frame of its own, with the messages'
    /// temporaries, so that the recursion through long chains of and/or stays shallow
    /// on the stack.
    #[inline(never)]
    fn condition(&mut self, expr: &Expr, ctx: Ctx) -> Result<Node, Error> {
        Ok(match expr {
            Expr::Or(..) | Expr::And(..) | Expr::Not(..) => self.expr(expr, ctx)?,
            Expr::Segment(slug) => {
                if ctx == Ctx::Filter {
                    return Err(Error::typing(
                        outside_filter(&Text::same(format!("segment \"{}\"", slug.node))),
                        slug.span,
                    ));
                }
                Node::Member(self.resolver.segment(slug)?)
            }
            Expr::Test(operand) => {
                let (op, ty) =
                    self.operand(operand, ctx, text!("a condition", "una condizione"))?;
                if !matches!(ty, Type::Bool | Type::Dynamic) {
                    let want = text!(
                        "a condition (a comparison, or a true/false value)",
                        "una condizione (un confronto, o un valore true/false)"
                    );
                    return Err(Error::typing(
                        Text::expected(&want, &found(ty, &operand.node)),
                        operand.span,
                    ));
                }
                Node::Test(op)
            }
            Expr::Compare { left, op, right } => {
                let (lop, lt) = self.operand(left, ctx, a_value())?;
                self.comparable(left, lt, op.symbol())?;
                let want = if lt == Type::Dynamic {
                    a_value()
                } else {
                    let d = describe(&left.node);
                    lt.article()
                        .then(&text!(" to compare with {d}", " da confrontare con {d}"))
                };
                let (rop, rt) = self.operand(right, ctx, want.clone())?;
                self.comparable(right, rt, op.symbol())?;
                if lt != Type::Dynamic && rt != Type::Dynamic && lt != rt {
                    return Err(Error::typing(
                        Text::expected(&want, &found(rt, &right.node)),
                        right.span,
                    ));
                }
                if op.is_ordering() {
                    for (side, ty) in [(left, lt), (right, rt)] {
                        if matches!(ty, Type::String | Type::Bool) {
                            let symbol = op.symbol();
                            let want = text!(
                                "a number or a date on both sides of {symbol}",
                                "un numero o una data ai due lati di {symbol}"
                            );
                            return Err(Error::typing(
                                Text::expected(&want, &found(ty, &side.node)),
                                side.span,
                            ));
                        }
                    }
                }
                Node::Compare(lop, *op, rop)
            }
            Expr::In {
                left,
                negated,
                list,
            } => {
                let (lop, lt) = self.operand(left, ctx, a_value())?;
                self.comparable(left, lt, "in")?;
                let want = if lt == Type::Dynamic {
                    a_value()
                } else {
                    let d = describe(&left.node);
                    lt.article()
                        .then(&text!(" in the list for {d}", " nella lista per {d}"))
                };
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let ty = literal_type(&item.node);
                    match lit(&item.node) {
                        Some(l) if lt == Type::Dynamic || ty == lt => items.push(l),
                        _ => {
                            let mut text = String::new();
                            write_literal(&mut text, &item.node);
                            let found = ty.article().then(&Text::same(format!(" ({text})")));
                            return Err(Error::typing(Text::expected(&want, &found), item.span));
                        }
                    }
                }
                Node::In(lop, items, *negated)
            }
            Expr::Exists { operand, negated } => {
                let (op, _) = self.operand(operand, ctx, a_value())?;
                Node::Exists(op, *negated)
            }
            Expr::Text { left, op, right } => {
                let contains = *op == TextOp::Contains;
                let left_ok = if contains {
                    text!("a string or a list", "una stringa o una lista")
                } else {
                    text!("a string", "una stringa")
                };
                let (lop, lt) = self.operand(left, ctx, left_ok.clone())?;
                let allowed = match lt {
                    Type::String | Type::Dynamic => true,
                    Type::List => contains,
                    _ => false,
                };
                let keyword = op.keyword();
                if !allowed {
                    let want = left_ok.then(&text!(
                        " on the left of {keyword}",
                        " a sinistra di {keyword}"
                    ));
                    return Err(Error::typing(
                        Text::expected(&want, &found(lt, &left.node)),
                        left.span,
                    ));
                }
                let want = if lt == Type::String || !contains {
                    text!("a string after {keyword}", "una stringa dopo {keyword}")
                } else {
                    text!("a value after {keyword}", "un valore dopo {keyword}")
                };
                let (rop, rt) = self.operand(right, ctx, want.clone())?;
                let right_ok = match rt {
                    Type::String | Type::Dynamic => true,
                    Type::Number | Type::Bool | Type::Date => contains && lt != Type::String,
                    Type::List | Type::Duration => false,
                };
                if !right_ok {
                    return Err(Error::typing(
                        Text::expected(&want, &found(rt, &right.node)),
                        right.span,
                    ));
                }
                Node::Text(lop, *op, rop)
            }
            Expr::Time { left, op, right } => {
                let (lop, lt) = self.operand(left, ctx, text!("a date", "una data"))?;
                let keyword = op.keyword();
                if !matches!(lt, Type::Date | Type::Dynamic) {
                    let want = text!(
                        "a date on the left of {keyword}",
                        "una data a sinistra di {keyword}"
                    );
                    return Err(Error::typing(
                        Text::expected(&want, &found(lt, &left.node)),
                        left.span,
                    ));
                }
                // A filter decides once, when the event arrives, whether it counts; a
                // condition relative to "now" would have to be re-decided later.
                if ctx == Ctx::Filter && matches!(right, TimeRef::Ago(_)) {
                    return Err(Error::typing(
                        text!(
                            "inside where, {keyword} needs a date such as 2026-01-01 (use within for a time window)",
                            "dentro where, {keyword} vuole una data come 2026-01-01 (usa within per una finestra di tempo)"
                        ),
                        left.span,
                    ));
                }
                Node::Time(lop, *op, *right)
            }
        })
    }

    /// Lists and durations have no comparison.
    fn comparable(&self, side: &Spanned<Operand>, ty: Type, op: &str) -> Result<(), Error> {
        let want = a_value().then(&text!(" for {op}", " per {op}"));
        let refused = Text::expected(&want, &found(ty, &side.node));
        match ty {
            Type::List => Err(Error::typing(
                refused.then(&text!(
                    " (use contains to look inside a list)",
                    " (usa contains per cercare dentro una lista)"
                )),
                side.span,
            )),
            Type::Duration => Err(Error::typing(refused, side.span)),
            _ => Ok(()),
        }
    }

    fn operand(
        &mut self,
        operand: &Spanned<Operand>,
        ctx: Ctx,
        expected: Text,
    ) -> Result<(Op, Type), Error> {
        let span = operand.span;
        let refused_in_filter = |what: Text| Error::typing(outside_filter(&what), span);
        Ok(match &operand.node {
            Operand::Literal(l) => {
                let ty = literal_type(l);
                match lit(l) {
                    Some(l) => (Op::Lit(l), ty),
                    None => {
                        let hint = if ty == Type::Duration {
                            text!(
                                "; durations follow within, before or after",
                                "; le durate seguono within, before o after"
                            )
                        } else {
                            text!(
                                "; to test membership write <value> in [...]",
                                "; per verificare l'appartenenza scrivi <valore> in [...]"
                            )
                        };
                        return Err(Error::typing(
                            Text::expected(&expected, &found(ty, &operand.node)).then(&hint),
                            span,
                        ));
                    }
                }
            }
            Operand::Path(path) => match (path.root, ctx) {
                (PathRoot::Traits, Ctx::Profile) => (Op::Trait(path.keys.clone()), Type::Dynamic),
                (PathRoot::Properties, Ctx::Filter) => {
                    (Op::Property(path.keys.clone()), Type::Dynamic)
                }
                (PathRoot::Traits, Ctx::Filter) => {
                    return Err(refused_in_filter(Text::same(describe(&operand.node))));
                }
                (PathRoot::Properties, Ctx::Profile) => {
                    let d = describe(&operand.node);
                    return Err(Error::typing(
                        text!(
                            "{d} can only be used inside where or as the property of sum, avg, min or max",
                            "{d} si può usare solo dentro where o come proprietà di sum, avg, min o max"
                        ),
                        span,
                    ));
                }
            },
            Operand::Name(name) => {
                if ctx == Ctx::Filter {
                    return Err(refused_in_filter(Text::same(name.as_str())));
                }
                match self.schema.get(name) {
                    Some(ty) => (Op::Computed(name.clone()), ty),
                    None => return Err(Error::typing(self.unknown_name(name), span)),
                }
            }
            Operand::Builtin(b) => {
                if ctx == Ctx::Filter {
                    return Err(refused_in_filter(Text::same(b.name())));
                }
                match b {
                    Builtin::FirstSeen => (Op::FirstSeen, Type::Date),
                    Builtin::LastSeen => (Op::LastSeen, Type::Date),
                    Builtin::FirstChannel => (Op::FirstChannel, Type::String),
                }
            }
            Operand::Field(f) => {
                if ctx == Ctx::Profile {
                    let hint = if *f == Field::Channel {
                        text!(
                            "; the profile's first channel is first_channel",
                            "; il primo canale del profilo è first_channel"
                        )
                    } else {
                        Text::same("")
                    };
                    let name = f.name();
                    return Err(Error::typing(
                        text!(
                            "{name} can only be used inside where (count(event \"...\" where {name} == ...))",
                            "{name} si può usare solo dentro where (count(event \"...\" where {name} == ...))"
                        )
                        .then(&hint),
                        span,
                    ));
                }
                let op = match f {
                    Field::Channel => Op::Channel,
                    Field::Event => Op::Event,
                    Field::Type => Op::Type,
                };
                (op, Type::String)
            }
            Operand::Aggregate(a) => {
                if ctx == Ctx::Filter {
                    let d = describe(&operand.node);
                    return Err(refused_in_filter(text!(
                        "an aggregate ({d})",
                        "un aggregato ({d})"
                    )));
                }
                if let Some(p) = a.func.property()
                    && p.node.root != PathRoot::Properties
                {
                    let mut text = String::new();
                    crate::format::write_path(&mut text, &p.node);
                    let name = a.func.name();
                    let want = text!(
                        "a property path (properties.<path>) in {name}(...)",
                        "il percorso di una proprietà (properties.<path>) in {name}(...)"
                    );
                    return Err(Error::typing(
                        Text::expected(&want, &Text::same(text)),
                        p.span,
                    ));
                }
                let filter = match &a.filter {
                    Some(f) => Some(self.expr(f, Ctx::Filter)?),
                    None => None,
                };
                let ty = match a.func {
                    AggFunc::First | AggFunc::Last => Type::Date,
                    _ => Type::Number,
                };
                (Op::Term(self.resolver.term(a, filter, span)?), ty)
            }
        })
    }

    fn unknown_name(&self, name: &str) -> Text {
        let builtins = [
            Builtin::FirstSeen.name(),
            Builtin::LastSeen.name(),
            Builtin::FirstChannel.name(),
        ];
        let known = self.schema.names().chain(builtins);
        match closest(name, known) {
            Some(near) => text!(
                "unknown name \"{name}\"; did you mean {near}?",
                "nome \"{name}\" sconosciuto; forse intendevi {near}?"
            ),
            None => {
                let computed: Vec<&str> = self.schema.names().collect();
                let (en, it) = if computed.is_empty() {
                    ("none".to_owned(), "nessuno".to_owned())
                } else {
                    (computed.join(", "), computed.join(", "))
                };
                text!(
                    "unknown name \"{name}\" (a profile trait is written traits.{name}; computed traits: {en}; built-ins: first_seen, last_seen, first_channel)",
                    "nome \"{name}\" sconosciuto (un tratto del profilo si scrive traits.{name}; tratti calcolati: {it}; predefiniti: first_seen, last_seen, first_channel)"
                )
            }
        }
    }
}

fn literal_type(l: &Literal) -> Type {
    match l {
        Literal::String(_) => Type::String,
        Literal::Number(_) => Type::Number,
        Literal::Bool(_) => Type::Bool,
        Literal::Date(_) => Type::Date,
        Literal::Duration(_) => Type::Duration,
        Literal::List(_) => Type::List,
    }
}

/// The evaluator's literal, for the literals that can be compared.
fn lit(l: &Literal) -> Option<Lit> {
    Some(match l {
        Literal::String(s) => Lit::Str(s.clone()),
        Literal::Number(n) => Lit::Num(*n),
        Literal::Bool(b) => Lit::Bool(*b),
        Literal::Date(ms) => Lit::Date(*ms),
        Literal::Duration(_) | Literal::List(_) => return None,
    })
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`: the optimal
/// string alignment distance, so a swapped pair of letters counts as one typo.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i chars of a and the first j of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_suggestions() {
        assert_eq!(edit_distance("p_alve", "p_alive"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("vpi", "vip"), 1);
        let names = ["p_alive", "clv_12m", "cluster"];
        assert_eq!(closest("p_alve", names.into_iter()), Some("p_alive"));
        assert_eq!(closest("clustr", names.into_iter()), Some("cluster"));
        assert_eq!(closest("country", names.into_iter()), None);
    }
}
