//! What parses, how it reads back, and the exact text of every syntax error.

use prossimo_segments::{
    AggFunc, CmpOp, ErrorKind, Expr, Literal, Operand, Schema, Source, compile, format, parse,
};

use crate::error;

/// Every example of the language reference, with its canonical form.
#[test]
fn the_documented_examples_parse_check_and_read_back() {
    let examples = [
        (r#"traits.country == "IT""#, r#"traits.country == "IT""#),
        (
            r#"p_alive < 0.4 and rfm_segment in ["At risk", "Can't lose"]"#,
            r#"p_alive < 0.4 and rfm_segment in ["At risk", "Can't lose"]"#,
        ),
        (
            r#"traits.email exists and traits.email contains "@gmail." and not traits.name starts_with "Test""#,
            r#"traits.email exists and traits.email contains "@gmail." and not traits.name starts_with "Test""#,
        ),
        (
            r#"count(event "Order Completed" where properties.category == "scarpe" within 90d) >= 2"#,
            r#"count(event "Order Completed" where properties.category == "scarpe" within 90d) >= 2"#,
        ),
        (
            r#"sum(event "Order Completed", properties.revenue within 365d) > 500"#,
            r#"sum(event "Order Completed", properties.revenue within 365d) > 500"#,
        ),
        (
            r#"avg(event "Order Completed", properties.revenue) >= 80"#,
            r#"avg(event "Order Completed", properties.revenue) >= 80"#,
        ),
        (
            "last(event \"Order Completed\") before 60d          # last order more than 60 days ago",
            r#"last(event "Order Completed") before 60d"#,
        ),
        (
            "first(event \"Order Completed\") after 30d          # first order within the last 30 days",
            r#"first(event "Order Completed") after 30d"#,
        ),
        (
            r#"count(channel "store" within 30d) > 0"#,
            r#"count(channel "store" within 30d) > 0"#,
        ),
        (
            "count(event \"Email Sent\" within 7d) == 0          # \"did not\" is count(...) == 0 or not (...)",
            r#"count(event "Email Sent" within 7d) == 0"#,
        ),
        (
            r#"segment "vip" and not segment "staff""#,
            r#"segment "vip" and not segment "staff""#,
        ),
        (
            "(count(event \"Order Completed\" where channel == \"store\" within 90d) >= 2 and p_alive < 0.4)\n  and count(event \"Email Sent\" within 7d) == 0",
            r#"count(event "Order Completed" where channel == "store" within 90d) >= 2 and p_alive < 0.4 and count(event "Email Sent" within 7d) == 0"#,
        ),
        ("last_seen before 2026-01-01", "last_seen before 2026-01-01"),
        (
            "max(any event, properties.items.0.price where type == \"track\") <= 1000.50",
            r#"max(any event, properties.items.0.price where type == "track") <= 1000.5"#,
        ),
        (
            r#"traits."utm-source" ends_with "_ig" or first_channel == "store""#,
            r#"traits."utm-source" ends_with "_ig" or first_channel == "store""#,
        ),
        (
            "min(event \"Order Completed\", properties.revenue within 52w) < -0.5",
            r#"min(event "Order Completed", properties.revenue within 52w) < -0.5"#,
        ),
        (
            "first_seen after 2025-12-31T23:00:00-01:00 and traits.newsletter",
            "first_seen after 2026-01-01 and traits.newsletter",
        ),
    ];
    let schema = Schema::product_default();
    for (src, canonical) in examples {
        let expr = compile(src, &schema).unwrap_or_else(|e| panic!("{src}\n{e}"));
        assert_eq!(format(&expr), canonical, "{src}");
        assert_eq!(parse(canonical).ok(), Some(expr), "{src}");
    }
}

#[test]
fn the_tree_has_the_expected_shape() {
    let expr = parse(r#"count(event "Email Sent" within 7d) == 0 or not traits.vip"#).unwrap();
    let Expr::Or(left, right) = expr else {
        panic!("expected or")
    };
    let Expr::Compare {
        left,
        op,
        right: zero,
    } = *left
    else {
        panic!("expected a comparison")
    };
    assert_eq!(op, CmpOp::Eq);
    assert_eq!(zero.node, Operand::Literal(Literal::Number(0.0)));
    assert_eq!((zero.span.line, zero.span.column), (1, 40));
    let Operand::Aggregate(count) = left.node else {
        panic!("expected an aggregate")
    };
    assert_eq!(count.func, AggFunc::Count);
    assert_eq!(count.source, Source::Event("Email Sent".into()));
    assert_eq!(count.within.map(|d| d.ms()), Some(7 * crate::DAY));
    assert!(matches!(*right, Expr::Not(_)));
}

#[test]
fn canonical_form_uses_the_fewest_parentheses_and_one_spelling() {
    let cases = [
        (
            "(a == 1 or b == 2) and c == 3",
            "(a == 1 or b == 2) and c == 3",
        ),
        (
            "a == 1 or (b == 2 and c == 3)",
            "a == 1 or b == 2 and c == 3",
        ),
        (
            "a == 1 or (b == 2 or c == 3)",
            "a == 1 or (b == 2 or c == 3)",
        ),
        (
            "((a == 1) or b == 2) or c == 3",
            "a == 1 or b == 2 or c == 3",
        ),
        ("not (a == 1 and b == 2)", "not (a == 1 and b == 2)"),
        ("not (not a)", "not not a"),
        (
            "a == 3.0 and b == 007 and c == -0.50",
            "a == 3 and b == 7 and c == -0.5",
        ),
        ("a  ==\n\t1   # one\n", "a == 1"),
        ("a after 2026-01-01T00:00:00Z", "a after 2026-01-01"),
        (
            "a after 2026-01-01T10:00:00.250+02:00",
            "a after 2026-01-01T08:00:00.250Z",
        ),
        (
            "a in [true,false , 2026-01-02]",
            "a in [true, false, 2026-01-02]",
        ),
        (
            "traits.\"plain\".\"x y\" exists",
            "traits.plain.\"x y\" exists",
        ),
        ("a == \"\\u{48}\\u{e9}\\t\"", "a == \"Hé\\t\""),
        ("a == \"\\u{7}\"", "a == \"\\u{7}\""),
        (
            "x not in [1] and y not exists",
            "x not in [1] and y not exists",
        ),
    ];
    for (src, canonical) in cases {
        let expr = parse(src).unwrap_or_else(|e| panic!("{src}\n{e}"));
        assert_eq!(format(&expr), canonical, "{src}");
    }
}

#[test]
fn italian_text_round_trips() {
    let src = "traits.città == \"Forlì-Cesena\" and traits.note contains \"perché è già così: \\\"caffè\\\" più tè\\n\"\n  and rfm_segment == \"Non si può perdere\"";
    let expr = compile(src, &Schema::product_default()).unwrap();
    let canonical = format(&expr);
    assert_eq!(
        canonical,
        "traits.città == \"Forlì-Cesena\" and traits.note contains \"perché è già così: \\\"caffè\\\" più tè\\n\" and rfm_segment == \"Non si può perdere\""
    );
    assert_eq!(parse(&canonical).unwrap(), expr);
    let Expr::And(left, _) = expr else { panic!() };
    let Expr::And(_, note) = *left else { panic!() };
    let Expr::Text { right, .. } = *note else {
        panic!()
    };
    assert_eq!(
        right.node,
        Operand::Literal(Literal::String(
            "perché è già così: \"caffè\" più tè\n".into()
        ))
    );
}

/// The brief's own example of an error, at line 2, column 14.
#[test]
fn a_single_equals_sign_says_what_was_expected() {
    let src = "p_alive < 0.4\nand traits.x = \"IT\"";
    assert_eq!(
        error(src),
        "expected a comparison operator (==, !=, <, <=, >, >=, in, contains, starts_with, ends_with, exists, before, after), found \"=\" at line 2, column 14"
    );
    let shown = compile(src, &Schema::product_default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        shown,
        "expected a comparison operator (==, !=, <, <=, >, >=, in, contains, starts_with, ends_with, exists, before, after), found \"=\" at line 2, column 14\n  and traits.x = \"IT\"\n               ^"
    );
}

#[test]
fn the_caret_counts_characters_and_keeps_tabs() {
    let err = parse("traits.città == 1 @").unwrap_err();
    assert_eq!(err.column(), 19);
    assert_eq!(
        err.to_string(),
        "expected and, or or the end of the definition, found \"@\" at line 1, column 19\n  traits.città == 1 @\n                    ^"
    );
    let err = parse("a == 1\n\tand b ! 3").unwrap_err();
    assert_eq!(
        err.to_string().lines().skip(1).collect::<Vec<_>>(),
        ["  \tand b ! 3", "  \t      ^"]
    );
    assert_eq!(err.kind(), ErrorKind::Syntax);
    assert_eq!((err.line(), err.column()), (2, 8));
}

#[test]
fn syntax_errors_say_what_was_expected() {
    let cases = [
        (
            "",
            "expected a condition (a comparison such as p_alive < 0.4, segment \"...\", not ..., or (...)), found the end of the input at line 1, column 1",
        ),
        (
            "and == 1",
            "expected a condition (a comparison such as p_alive < 0.4, segment \"...\", not ..., or (...)), found \"and\" at line 1, column 1",
        ),
        (
            "p_alive <",
            "expected a value after <, found the end of the input at line 1, column 10",
        ),
        (
            "p_alive == 1 p_alive",
            "expected and, or or the end of the definition, found \"p_alive\" at line 1, column 14",
        ),
        (
            "(p_alive < 1",
            "expected \")\" to close the \"(\" at line 1, column 1, found the end of the input at line 1, column 13",
        ),
        (
            "p_alive not foo",
            "expected in or exists after not, found \"foo\" at line 1, column 13",
        ),
        (
            "segment vip",
            "expected a segment slug in double quotes after segment, found \"vip\" at line 1, column 9",
        ),
        (
            "traits.name == \"abc",
            "unterminated string (a string ends with \" on the same line) at line 1, column 16",
        ),
        (
            "traits.name == \"ab\nc\"",
            "unterminated string (a string ends with \" on the same line) at line 1, column 16",
        ),
        (
            "traits.name == \"a\\qb\"",
            "unknown escape \\q in a string (use \\\", \\\\, \\n, \\t, \\r or \\u{...}) at line 1, column 18",
        ),
        (
            "traits.name == \"a\\u{d800}\"",
            "invalid unicode escape (write \\u{...} with 1 to 6 hex digits of a valid character) at line 1, column 18",
        ),
        (
            "traits.name == \"\\u{1234567}\"",
            "invalid unicode escape (write \\u{...} with 1 to 6 hex digits of a valid character) at line 1, column 17",
        ),
        (
            "count(event \"X\" within 0d) > 1",
            "duration 0d is zero (a duration is at least 1d) at line 1, column 24",
        ),
        (
            "count(event \"X\" within 3654d) > 1",
            "duration 3654d is too long (at most 10 years: 3653d, 521w, 87672h or 5260320m) at line 1, column 24",
        ),
        (
            "count(event \"X\" within 522w) > 1",
            "duration 522w is too long (at most 10 years: 3653d, 521w, 87672h or 5260320m) at line 1, column 24",
        ),
        (
            "count(event \"X\" within 99999999999m) > 1",
            "duration 99999999999m is too long (at most 10 years: 3653d, 521w, 87672h or 5260320m) at line 1, column 24",
        ),
        (
            "count(event \"X\" within 90days) > 1",
            "unknown duration unit \"days\" in \"90days\" (use m, h, d or w, as in 90d) at line 1, column 24",
        ),
        (
            "count(event \"X\" within 1.5d) > 1",
            "invalid duration \"1.5d\" (a duration is a positive whole number followed by m, h, d or w) at line 1, column 24",
        ),
        (
            "last_seen before -3d",
            "invalid duration \"-3d\" (a duration is a positive whole number followed by m, h, d or w) at line 1, column 18",
        ),
        (
            "count(event \"X\" within foo) > 1",
            "expected a duration (like 90d) after within, found \"foo\" at line 1, column 24",
        ),
        (
            "rfm_segment in []",
            "a list cannot be empty at line 1, column 16",
        ),
        (
            "rfm_segment in [[1]]",
            "a list holds literals (strings, numbers, true/false, dates), not lists at line 1, column 17",
        ),
        (
            "rfm_segment in [p_alive]",
            "expected a literal in the list, found \"p_alive\" at line 1, column 17",
        ),
        (
            "rfm_segment in \"a\"",
            "expected a list such as [\"a\", \"b\"] after in, found the string \"a\" at line 1, column 16",
        ),
        (
            "rfm_segment in [\"a\" \"b\"]",
            "expected \",\" or \"]\" in the list, found the string \"b\" at line 1, column 21",
        ),
        (
            "count",
            "expected \"(\" after count, found the end of the input at line 1, column 6",
        ),
        (
            "count(p_alive) > 1",
            "expected a source (event \"<name>\", channel \"<name>\" or any event) after count(, found \"p_alive\" at line 1, column 7",
        ),
        (
            "count(event X) > 1",
            "expected the event name in double quotes after event, found \"X\" at line 1, column 13",
        ),
        (
            "count(channel 3) > 1",
            "expected the channel name in double quotes after channel, found \"3\" at line 1, column 15",
        ),
        (
            "count(any thing) > 1",
            "expected event after any, found \"thing\" at line 1, column 11",
        ),
        (
            "sum(event \"X\") > 1",
            "expected \",\" and a property (like properties.revenue) after the source of sum, found \")\" at line 1, column 14",
        ),
        (
            "sum(event \"X\", p_alive) > 1",
            "expected a property path (like properties.revenue), found \"p_alive\" at line 1, column 16",
        ),
        (
            "avg(event \"X\", foo.bar) > 1",
            "expected a property path (like properties.revenue), found \"foo.bar\" at line 1, column 16",
        ),
        (
            "count(event \"X\", properties.a) > 1",
            "expected where, within or \")\" in count(...), found \",\" at line 1, column 16",
        ),
        (
            "count(event \"X\" where properties.a == 1 foo) > 1",
            "expected and, or, within or \")\" in count(...), found \"foo\" at line 1, column 41",
        ),
        (
            "count(event \"X\" within 9d foo) > 1",
            "expected \")\" in count(...), found \"foo\" at line 1, column 27",
        ),
        (
            "foo.bar == 1",
            "unknown path \"foo.bar\" (paths start with traits. or properties.) at line 1, column 1",
        ),
        (
            "traits == 1",
            "expected \".\" and a key after traits, found \"==\" at line 1, column 8",
        ),
        (
            "traits. == 1",
            "expected a key after \"traits.\" (a name, or any text in double quotes) at line 1, column 8",
        ),
        (
            "traits.\"\" == 1",
            "expected a key after \"traits.\" (a name, or any text in double quotes) at line 1, column 8",
        ),
        (
            "last_seen before 2026-02-30",
            "invalid date \"2026-02-30\" (write YYYY-MM-DD or an RFC 3339 timestamp such as 2026-01-31T09:30:00Z, years 0001 to 9999) at line 1, column 18",
        ),
        (
            "last_seen before 2026-1-1",
            "invalid date \"2026-1-1\" (write YYYY-MM-DD or an RFC 3339 timestamp such as 2026-01-31T09:30:00Z, years 0001 to 9999) at line 1, column 18",
        ),
        (
            "last_seen before foo",
            "expected a duration (like 60d) or a date (like 2026-01-01) after before, found \"foo\" at line 1, column 18",
        ),
        (
            "p_alive == 1.",
            "invalid number \"1.\" (digits must follow the decimal point) at line 1, column 12",
        ),
        (
            "p_alive == 1e5",
            "unknown duration unit \"e5\" in \"1e5\" (use m, h, d or w, as in 90d) at line 1, column 12",
        ),
        (
            "p_alive = 1",
            "expected a comparison operator (==, !=, <, <=, >, >=, in, contains, starts_with, ends_with, exists, before, after), found \"=\" at line 1, column 9",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(error(src), expected, "{src:?}");
    }
}

#[test]
fn out_of_range_numbers_are_refused() {
    let huge = format!("p_alive == 1{}", "0".repeat(400));
    assert_eq!(
        error(&huge),
        format!(
            "number \"1{}\" is out of range at line 1, column 12",
            "0".repeat(400)
        )
    );
}

#[test]
fn nesting_and_size_are_bounded() {
    let deep = format!("{}a == 1{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(
        error(&deep),
        "nested too deeply (at most 32 levels of parentheses, not and aggregates) at line 1, column 33"
    );
    let long = vec!["a == 1"; 600].join(" and ");
    assert!(
        error(&long)
            .starts_with("the definition is too long (at most 500 conditions and operators)")
    );
    let fine = vec!["p_alive == 1"; 200].join(" or ");
    assert!(compile(&fine, &Schema::product_default()).is_ok());
}

/// Every definition in the reference's example table compiles.
#[test]
fn the_reference_examples_compile() {
    let doc = include_str!("../../../../docs/segments.md");
    let table = doc
        .split("## Examples")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Audience"))
        .filter_map(|l| l.rsplit("| `").next()?.strip_suffix("` |"))
        .collect();
    assert!(rows.len() >= 10, "{rows:?}");
    for src in rows {
        if let Err(e) = compile(src, &Schema::product_default()) {
            panic!("{src}\n{e}");
        }
    }
}

/// A duration set outside a definition (a journey's delay) follows the language's rules
/// and says what is wrong in its words.
#[test]
fn durations_alone_read_as_in_a_definition() {
    use prossimo_segments::{DurationUnit, Language, parse_duration};
    let d = parse_duration("90d").unwrap();
    assert_eq!((d.amount, d.unit), (90, DurationUnit::Days));
    assert_eq!(parse_duration(" 1h ").unwrap().ms(), 3_600_000);
    for bad in ["", "1 hour", "0d", "1.5h", "-1d", "90d 1h", "99999w"] {
        let error = parse_duration(bad).unwrap_err();
        assert!(!error.message().is_empty(), "{bad:?}");
    }
    let error = parse_duration("1 ora").unwrap_err();
    assert!(
        error.message_in(Language::Italian).contains("durata"),
        "{}",
        error.message_in(Language::Italian)
    );
}
