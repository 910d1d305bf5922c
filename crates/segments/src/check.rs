//! Static types and the checker. Checking also lowers the tree into the evaluator's form
//! ([`Node`]), so whatever passed the checker is exactly what gets evaluated.

use std::collections::BTreeMap;

use crate::ast::{
    AggFunc, Aggregate, Builtin, Expr, Field, Literal, Operand, PathRoot, Span, Spanned, TextOp,
    TimeRef,
};
use crate::error::Error;
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
    fn article(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::String => "a string",
            Type::Bool => "a true/false value",
            Type::Date => "a date",
            Type::Duration => "a duration",
            Type::List => "a list",
            Type::Dynamic => "a trait or property value",
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

const A_VALUE: &str = "a value (a number, a string, true/false or a date)";
const FILTER_SEES: &str = "a filter sees only the event (properties.<path>, channel, event, type)";

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

fn found(ty: Type, operand: &Operand) -> String {
    format!("{} ({})", ty.article(), describe(operand))
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
            Expr::Segment(slug) => {
                if ctx == Ctx::Filter {
                    return Err(Error::typing(
                        format!(
                            "segment \"{}\" cannot be used inside where: {FILTER_SEES}",
                            slug.node
                        ),
                        slug.span,
                    ));
                }
                Node::Member(self.resolver.segment(slug)?)
            }
            Expr::Test(operand) => {
                let (op, ty) = self.operand(operand, ctx, "a condition")?;
                if !matches!(ty, Type::Bool | Type::Dynamic) {
                    return Err(Error::typing(
                        format!(
                            "expected a condition (a comparison, or a true/false value), found {}",
                            found(ty, &operand.node)
                        ),
                        operand.span,
                    ));
                }
                Node::Test(op)
            }
            Expr::Compare { left, op, right } => {
                let (lop, lt) = self.operand(left, ctx, A_VALUE)?;
                self.comparable(left, lt, op.symbol())?;
                let want = if lt == Type::Dynamic {
                    A_VALUE.to_owned()
                } else {
                    format!("{} to compare with {}", lt.article(), describe(&left.node))
                };
                let (rop, rt) = self.operand(right, ctx, &want)?;
                self.comparable(right, rt, op.symbol())?;
                if lt != Type::Dynamic && rt != Type::Dynamic && lt != rt {
                    return Err(Error::typing(
                        format!("expected {want}, found {}", found(rt, &right.node)),
                        right.span,
                    ));
                }
                if op.is_ordering() {
                    for (side, ty) in [(left, lt), (right, rt)] {
                        if matches!(ty, Type::String | Type::Bool) {
                            return Err(Error::typing(
                                format!(
                                    "expected a number or a date on both sides of {}, found {}",
                                    op.symbol(),
                                    found(ty, &side.node)
                                ),
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
                let (lop, lt) = self.operand(left, ctx, A_VALUE)?;
                self.comparable(left, lt, "in")?;
                let want = if lt == Type::Dynamic {
                    A_VALUE.to_owned()
                } else {
                    format!("{} in the list for {}", lt.article(), describe(&left.node))
                };
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let ty = literal_type(&item.node);
                    match lit(&item.node) {
                        Some(l) if lt == Type::Dynamic || ty == lt => items.push(l),
                        _ => {
                            let mut text = String::new();
                            write_literal(&mut text, &item.node);
                            return Err(Error::typing(
                                format!("expected {want}, found {} ({text})", ty.article()),
                                item.span,
                            ));
                        }
                    }
                }
                Node::In(lop, items, *negated)
            }
            Expr::Exists { operand, negated } => {
                let (op, _) = self.operand(operand, ctx, A_VALUE)?;
                Node::Exists(op, *negated)
            }
            Expr::Text { left, op, right } => {
                let contains = *op == TextOp::Contains;
                let left_ok = if contains {
                    "a string or a list"
                } else {
                    "a string"
                };
                let (lop, lt) = self.operand(left, ctx, left_ok)?;
                let allowed = match lt {
                    Type::String | Type::Dynamic => true,
                    Type::List => contains,
                    _ => false,
                };
                if !allowed {
                    return Err(Error::typing(
                        format!(
                            "expected {left_ok} on the left of {}, found {}",
                            op.keyword(),
                            found(lt, &left.node)
                        ),
                        left.span,
                    ));
                }
                let want = if lt == Type::String || !contains {
                    format!("a string after {}", op.keyword())
                } else {
                    format!("a value after {}", op.keyword())
                };
                let (rop, rt) = self.operand(right, ctx, &want)?;
                let right_ok = match rt {
                    Type::String | Type::Dynamic => true,
                    Type::Number | Type::Bool | Type::Date => contains && lt != Type::String,
                    Type::List | Type::Duration => false,
                };
                if !right_ok {
                    return Err(Error::typing(
                        format!("expected {want}, found {}", found(rt, &right.node)),
                        right.span,
                    ));
                }
                Node::Text(lop, *op, rop)
            }
            Expr::Time { left, op, right } => {
                let (lop, lt) = self.operand(left, ctx, "a date")?;
                if !matches!(lt, Type::Date | Type::Dynamic) {
                    return Err(Error::typing(
                        format!(
                            "expected a date on the left of {}, found {}",
                            op.keyword(),
                            found(lt, &left.node)
                        ),
                        left.span,
                    ));
                }
                // A filter decides once, when the event arrives, whether it counts; a
                // condition relative to "now" would have to be re-decided later.
                if ctx == Ctx::Filter && matches!(right, TimeRef::Ago(_)) {
                    return Err(Error::typing(
                        format!(
                            "inside where, {} needs a date such as 2026-01-01 (use within for a time window)",
                            op.keyword()
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
        match ty {
            Type::List => Err(Error::typing(
                format!(
                    "expected {A_VALUE} for {op}, found {} (use contains to look inside a list)",
                    found(ty, &side.node)
                ),
                side.span,
            )),
            Type::Duration => Err(Error::typing(
                format!(
                    "expected {A_VALUE} for {op}, found {}",
                    found(ty, &side.node)
                ),
                side.span,
            )),
            _ => Ok(()),
        }
    }

    fn operand(
        &mut self,
        operand: &Spanned<Operand>,
        ctx: Ctx,
        expected: &str,
    ) -> Result<(Op, Type), Error> {
        let span = operand.span;
        let outside_filter = |what: &str| {
            Error::typing(
                format!("{what} cannot be used inside where: {FILTER_SEES}"),
                span,
            )
        };
        Ok(match &operand.node {
            Operand::Literal(l) => {
                let ty = literal_type(l);
                match lit(l) {
                    Some(l) => (Op::Lit(l), ty),
                    None => {
                        let hint = if ty == Type::Duration {
                            "durations follow within, before or after"
                        } else {
                            "to test membership write <value> in [...]"
                        };
                        return Err(Error::typing(
                            format!(
                                "expected {expected}, found {}; {hint}",
                                found(ty, &operand.node)
                            ),
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
                    return Err(outside_filter(&describe(&operand.node)));
                }
                (PathRoot::Properties, Ctx::Profile) => {
                    return Err(Error::typing(
                        format!(
                            "{} can only be used inside where or as the property of sum, avg, min or max",
                            describe(&operand.node)
                        ),
                        span,
                    ));
                }
            },
            Operand::Name(name) => {
                if ctx == Ctx::Filter {
                    return Err(outside_filter(name));
                }
                match self.schema.get(name) {
                    Some(ty) => (Op::Computed(name.clone()), ty),
                    None => return Err(Error::typing(self.unknown_name(name), span)),
                }
            }
            Operand::Builtin(b) => {
                if ctx == Ctx::Filter {
                    return Err(outside_filter(b.name()));
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
                        "; the profile's first channel is first_channel"
                    } else {
                        ""
                    };
                    return Err(Error::typing(
                        format!(
                            "{} can only be used inside where (count(event \"...\" where {} == ...)){hint}",
                            f.name(),
                            f.name()
                        ),
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
                    return Err(outside_filter(&format!(
                        "an aggregate ({})",
                        describe(&operand.node)
                    )));
                }
                if let Some(p) = a.func.property()
                    && p.node.root != PathRoot::Properties
                {
                    let mut text = String::new();
                    crate::format::write_path(&mut text, &p.node);
                    return Err(Error::typing(
                        format!(
                            "expected a property path (properties.<path>) in {}(...), found {text}",
                            a.func.name()
                        ),
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

    fn unknown_name(&self, name: &str) -> String {
        let builtins = [
            Builtin::FirstSeen.name(),
            Builtin::LastSeen.name(),
            Builtin::FirstChannel.name(),
        ];
        let known = self.schema.names().chain(builtins);
        match closest(name, known) {
            Some(near) => format!("unknown name \"{name}\"; did you mean {near}?"),
            None => {
                let computed: Vec<&str> = self.schema.names().collect();
                format!(
                    "unknown name \"{name}\" (a profile trait is written traits.{name}; computed traits: {}; built-ins: first_seen, last_seen, first_channel)",
                    if computed.is_empty() {
                        "none".to_owned()
                    } else {
                        computed.join(", ")
                    }
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
