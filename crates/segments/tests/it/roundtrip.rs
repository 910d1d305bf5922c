//! `parse(format(x)) == x` for arbitrary trees.

use proptest::prelude::*;
use prossimo_segments::{
    AggFunc, Aggregate, Builtin, CmpOp, Duration, DurationUnit, Expr, Field, KEYWORDS, Literal,
    Operand, Path, PathRoot, Source, Spanned, TextOp, TimeOp, TimeRef, format, parse,
};

/// 0001-01-01 to 9999-12-31T23:59:59.999Z.
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9 àèéìòùÀÈ'\"\\\\\n\t\r#.,:_-]{0,12}",
        any::<String>(),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<f64> {
    prop_oneof![
        any::<i32>().prop_map(f64::from),
        -1e6..1e6f64,
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
    ]
    .boxed()
}

fn date() -> BoxedStrategy<i64> {
    prop_oneof![
        (MIN_MS / 86_400_000..=MAX_MS / 86_400_000).prop_map(|d| d * 86_400_000),
        (MIN_MS / 1000..=MAX_MS / 1000).prop_map(|s| s * 1000),
        MIN_MS..=MAX_MS,
    ]
    .boxed()
}

fn duration() -> BoxedStrategy<Duration> {
    prop_oneof![
        (1..=5_260_320u32).prop_map(|n| Duration::new(n, DurationUnit::Minutes)),
        (1..=87_672u32).prop_map(|n| Duration::new(n, DurationUnit::Hours)),
        (1..=3_653u32).prop_map(|n| Duration::new(n, DurationUnit::Days)),
        (1..=521u32).prop_map(|n| Duration::new(n, DurationUnit::Weeks)),
    ]
    .boxed()
}

fn scalar() -> BoxedStrategy<Literal> {
    prop_oneof![
        text().prop_map(Literal::String),
        number().prop_map(Literal::Number),
        any::<bool>().prop_map(Literal::Bool),
        date().prop_map(Literal::Date),
        duration().prop_map(Literal::Duration),
    ]
    .boxed()
}

fn literal() -> BoxedStrategy<Literal> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 1..4).prop_map(Literal::List),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<String> {
    "[a-zA-Z_][a-zA-Z0-9_à]{0,10}"
        .prop_filter("not a keyword", |n| !KEYWORDS.contains(&n.as_str()))
        .boxed()
}

fn path() -> BoxedStrategy<Path> {
    let key = prop_oneof![
        "[a-z0-9_]{1,6}",
        any::<String>().prop_filter("non-empty", |k| !k.is_empty()),
    ];
    (
        prop_oneof![Just(PathRoot::Traits), Just(PathRoot::Properties)],
        prop::collection::vec(key, 1..4),
    )
        .prop_map(|(root, keys)| Path { root, keys })
        .boxed()
}

fn source() -> BoxedStrategy<Source> {
    prop_oneof![
        text().prop_map(Source::Event),
        text().prop_map(Source::Channel),
        Just(Source::AnyEvent),
    ]
    .boxed()
}

fn func() -> BoxedStrategy<AggFunc> {
    let p = || path().prop_map(Spanned::new);
    prop_oneof![
        Just(AggFunc::Count),
        Just(AggFunc::First),
        Just(AggFunc::Last),
        p().prop_map(AggFunc::Sum),
        p().prop_map(AggFunc::Avg),
        p().prop_map(AggFunc::Min),
        p().prop_map(AggFunc::Max),
    ]
    .boxed()
}

fn aggregate(filter: BoxedStrategy<Option<Expr>>) -> BoxedStrategy<Operand> {
    (func(), source(), filter, prop::option::of(duration()))
        .prop_map(|(func, source, filter, within)| {
            Operand::Aggregate(Box::new(Aggregate {
                func,
                source,
                filter,
                within,
            }))
        })
        .boxed()
}

fn operand(filter: BoxedStrategy<Option<Expr>>) -> BoxedStrategy<Spanned<Operand>> {
    prop_oneof![
        literal().prop_map(Operand::Literal),
        path().prop_map(Operand::Path),
        name().prop_map(Operand::Name),
        prop_oneof![
            Just(Builtin::FirstSeen),
            Just(Builtin::LastSeen),
            Just(Builtin::FirstChannel)
        ]
        .prop_map(Operand::Builtin),
        prop_oneof![Just(Field::Channel), Just(Field::Event), Just(Field::Type)]
            .prop_map(Operand::Field),
        aggregate(filter),
    ]
    .prop_map(Spanned::new)
    .boxed()
}

fn condition(filter: BoxedStrategy<Option<Expr>>) -> BoxedStrategy<Expr> {
    let op = || operand(filter.clone());
    let cmp = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    let text_op = prop_oneof![
        Just(TextOp::Contains),
        Just(TextOp::StartsWith),
        Just(TextOp::EndsWith)
    ];
    let time_op = prop_oneof![Just(TimeOp::Before), Just(TimeOp::After)];
    let time_ref = prop_oneof![
        duration().prop_map(TimeRef::Ago),
        date().prop_map(TimeRef::At)
    ];
    prop_oneof![
        text().prop_map(|s| Expr::Segment(Spanned::new(s))),
        op().prop_map(Expr::Test),
        (op(), cmp, op()).prop_map(|(left, op, right)| Expr::Compare { left, op, right }),
        (
            op(),
            any::<bool>(),
            prop::collection::vec(scalar().prop_map(Spanned::new), 1..4)
        )
            .prop_map(|(left, negated, list)| Expr::In {
                left,
                negated,
                list
            }),
        (op(), any::<bool>()).prop_map(|(operand, negated)| Expr::Exists { operand, negated }),
        (op(), text_op, op()).prop_map(|(left, op, right)| Expr::Text { left, op, right }),
        (op(), time_op, time_ref).prop_map(|(left, op, right)| Expr::Time { left, op, right }),
    ]
    .boxed()
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = condition(Just(None).boxed());
    leaf.prop_recursive(4, 48, 3, |inner| {
        let filter = prop::option::of(inner.clone()).boxed();
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
            condition(filter),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn format_then_parse_gives_the_same_tree(x in expr()) {
        let text = format(&x);
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(&back, &x, "{}", text);
        prop_assert_eq!(format(&back), text);
    }

    /// Whatever parses, reads back from its canonical form.
    #[test]
    fn canonical_form_of_arbitrary_text_is_stable(src in "[a-z_. ()\\[\\],\"=<>!#0-9\n-]{0,40}") {
        if let Ok(x) = parse(&src) {
            let text = format(&x);
            prop_assert!(!text.contains('\n'));
            prop_assert_eq!(parse(&text).ok(), Some(x));
        }
    }
}
