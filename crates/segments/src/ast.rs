//! The syntax tree of a segment definition.
//!
//! Positions ([`Span`]) ride along in [`Spanned`] so the checker can point at the offending
//! part, but they are not part of an expression's meaning: two trees that differ only in
//! positions are equal. That is what makes `parse(format(x)) == x` a meaningful property.

/// A 1-based line and column (in characters) of the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub line: u32,
    pub column: u32,
}

/// A node with the position it was parsed at. Equality ignores the position.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    /// A node without a known position (built by hand, not parsed).
    pub fn new(node: T) -> Self {
        Spanned {
            node,
            span: Span::default(),
        }
    }

    pub fn at(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl Expr {
    /// The segments the expression names (`segment "vip"`), in order, with their
    /// positions. Aggregates' filters cannot name one, so only and/or/not are walked.
    pub fn segment_references(&self) -> Vec<&Spanned<String>> {
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                let mut all = a.segment_references();
                all.extend(b.segment_references());
                all
            }
            Expr::Not(inner) => inner.segment_references(),
            Expr::Segment(slug) => vec![slug],
            _ => Vec::new(),
        }
    }
}

/// A boolean expression: the whole definition, or the filter of an aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `segment "vip"`: membership of another segment.
    Segment(Spanned<String>),
    /// A bare value used as a condition (`traits.newsletter`): true iff it is `true`.
    Test(Spanned<Operand>),
    /// `left == right`, `left < right`, …
    Compare {
        left: Spanned<Operand>,
        op: CmpOp,
        right: Spanned<Operand>,
    },
    /// `left in [..]` or `left not in [..]` (the list is never empty).
    In {
        left: Spanned<Operand>,
        negated: bool,
        list: Vec<Spanned<Literal>>,
    },
    /// `operand exists` or `operand not exists`.
    Exists {
        operand: Spanned<Operand>,
        negated: bool,
    },
    /// `left contains right`, `starts_with`, `ends_with`.
    Text {
        left: Spanned<Operand>,
        op: TextOp,
        right: Spanned<Operand>,
    },
    /// `left before 60d`, `left after 2026-01-01`.
    Time {
        left: Spanned<Operand>,
        op: TimeOp,
        right: TimeRef,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// `<`, `<=`, `>`, `>=`: defined on numbers and dates only.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

impl TextOp {
    pub fn keyword(self) -> &'static str {
        match self {
            TextOp::Contains => "contains",
            TextOp::StartsWith => "starts_with",
            TextOp::EndsWith => "ends_with",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeOp {
    Before,
    After,
}

impl TimeOp {
    pub fn keyword(self) -> &'static str {
        match self {
            TimeOp::Before => "before",
            TimeOp::After => "after",
        }
    }
}

/// The right side of `before` / `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRef {
    /// `before 60d`: relative to the evaluation time.
    Ago(Duration),
    /// `before 2026-01-01`: an instant, in milliseconds since the Unix epoch (UTC).
    At(i64),
}

/// Something that has a value: a literal, a trait, a computed trait, an aggregate, …
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Literal),
    /// `traits.<path>` or `properties.<path>`.
    Path(Path),
    /// A computed trait by bare name (`p_alive`), resolved against a [`crate::Schema`].
    Name(String),
    Builtin(Builtin),
    /// `channel`, `event`, `type`: fields of the event, inside `where` only.
    Field(Field),
    Aggregate(Box<Aggregate>),
}

/// A literal value. Dates are milliseconds since the Unix epoch (UTC) between the years 1
/// and 9999; numbers are finite; lists hold scalar literals and are never empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(f64),
    Bool(bool),
    Date(i64),
    Duration(Duration),
    List(Vec<Literal>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathRoot {
    Traits,
    Properties,
}

impl PathRoot {
    pub fn name(self) -> &'static str {
        match self {
            PathRoot::Traits => "traits",
            PathRoot::Properties => "properties",
        }
    }
}

/// A dotted path into a JSON object: `traits.address.city`. `keys` is never empty; a key
/// made of digits also indexes an array.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub root: PathRoot,
    pub keys: Vec<String>,
}

/// Facts every profile has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    FirstSeen,
    LastSeen,
    FirstChannel,
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::FirstSeen => "first_seen",
            Builtin::LastSeen => "last_seen",
            Builtin::FirstChannel => "first_channel",
        }
    }
}

/// Fields of an event, usable inside an aggregate's `where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Channel,
    Event,
    Type,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Channel => "channel",
            Field::Event => "event",
            Field::Type => "type",
        }
    }
}

/// `count(SOURCE [where FILTER] [within DURATION])` and its siblings.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub func: AggFunc,
    pub source: Source,
    pub filter: Option<Expr>,
    pub within: Option<Duration>,
}

/// The aggregate function; the ones over a property carry its path, so a `sum` without a
/// property cannot be built.
#[derive(Debug, Clone, PartialEq)]
pub enum AggFunc {
    Count,
    First,
    Last,
    Sum(Spanned<Path>),
    Avg(Spanned<Path>),
    Min(Spanned<Path>),
    Max(Spanned<Path>),
}

impl AggFunc {
    pub fn name(&self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::First => "first",
            AggFunc::Last => "last",
            AggFunc::Sum(_) => "sum",
            AggFunc::Avg(_) => "avg",
            AggFunc::Min(_) => "min",
            AggFunc::Max(_) => "max",
        }
    }

    pub fn property(&self) -> Option<&Spanned<Path>> {
        match self {
            AggFunc::Count | AggFunc::First | AggFunc::Last => None,
            AggFunc::Sum(p) | AggFunc::Avg(p) | AggFunc::Min(p) | AggFunc::Max(p) => Some(p),
        }
    }
}

/// Which events an aggregate looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `event "Order Completed"`: events with that name.
    Event(String),
    /// `channel "store"`: events from that channel.
    Channel(String),
    /// `any event`: every event of the profile.
    AnyEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl DurationUnit {
    pub fn suffix(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        }
    }

    pub fn from_suffix(s: &str) -> Option<DurationUnit> {
        match s {
            "m" => Some(DurationUnit::Minutes),
            "h" => Some(DurationUnit::Hours),
            "d" => Some(DurationUnit::Days),
            "w" => Some(DurationUnit::Weeks),
            _ => None,
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            DurationUnit::Minutes => 60_000,
            DurationUnit::Hours => 3_600_000,
            DurationUnit::Days => 86_400_000,
            DurationUnit::Weeks => 7 * 86_400_000,
        }
    }
}

/// `90d`: a whole number of minutes, hours, days or weeks, kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: u32,
    pub unit: DurationUnit,
}

impl Duration {
    /// The longest duration the language accepts: 10 years of 365.25 days, rounded up.
    pub const MAX_MS: i64 = 3653 * 86_400_000;

    pub fn new(amount: u32, unit: DurationUnit) -> Self {
        Duration { amount, unit }
    }

    pub fn ms(self) -> i64 {
        i64::from(self.amount) * self.unit.ms()
    }
}
