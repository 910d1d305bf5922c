//! The canonical form: one line, single spaces, the fewest parentheses the precedence
//! allows, one spelling per literal. `parse(format(x)) == x` for every tree the parser can
//! produce.

use std::fmt::Write;

use crate::ast::{AggFunc, Aggregate, Expr, Literal, Operand, Path, Source, TimeRef};
use crate::dates;
use crate::lexer::is_bare_key;

/// The canonical text of an expression.
pub fn format(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, 0);
    out
}

/// Binding strength: `or` < `and` < `not` < everything else.
fn precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) => 3,
        _ => 4,
    }
}

/// Writes `expr`, in parentheses if it binds less tightly than `min`.
fn write_expr(out: &mut String, expr: &Expr, min: u8) {
    let parens = precedence(expr) < min;
    if parens {
        out.push('(');
    }
    match expr {
        // Both are parsed left-associatively, so a right child of the same kind needs
        // parentheses to stay on the right.
        Expr::Or(l, r) => {
            write_expr(out, l, 1);
            out.push_str(" or ");
            write_expr(out, r, 2);
        }
        Expr::And(l, r) => {
            write_expr(out, l, 2);
            out.push_str(" and ");
            write_expr(out, r, 3);
        }
        Expr::Not(inner) => {
            out.push_str("not ");
            write_expr(out, inner, 3);
        }
        Expr::Segment(slug) => {
            out.push_str("segment ");
            write_string(out, &slug.node);
        }
        Expr::Test(operand) => write_operand(out, &operand.node),
        Expr::Compare { left, op, right } => {
            write_operand(out, &left.node);
            let _ = write!(out, " {} ", op.symbol());
            write_operand(out, &right.node);
        }
        Expr::In {
            left,
            negated,
            list,
        } => {
            write_operand(out, &left.node);
            out.push_str(if *negated { " not in " } else { " in " });
            write_list(out, list.iter().map(|l| &l.node));
        }
        Expr::Exists { operand, negated } => {
            write_operand(out, &operand.node);
            out.push_str(if *negated { " not exists" } else { " exists" });
        }
        Expr::Text { left, op, right } => {
            write_operand(out, &left.node);
            let _ = write!(out, " {} ", op.keyword());
            write_operand(out, &right.node);
        }
        Expr::Time { left, op, right } => {
            write_operand(out, &left.node);
            let _ = write!(out, " {} ", op.keyword());
            match right {
                TimeRef::Ago(d) => write_literal(out, &Literal::Duration(*d)),
                TimeRef::At(ms) => out.push_str(&dates::format(*ms)),
            }
        }
    }
    if parens {
        out.push(')');
    }
}

pub(crate) fn write_operand(out: &mut String, operand: &Operand) {
    match operand {
        Operand::Literal(l) => write_literal(out, l),
        Operand::Path(p) => write_path(out, p),
        Operand::Name(n) => out.push_str(n),
        Operand::Builtin(b) => out.push_str(b.name()),
        Operand::Field(f) => out.push_str(f.name()),
        Operand::Aggregate(a) => write_aggregate(out, a),
    }
}

/// The canonical text of an aggregate: what identifies its term.
pub(crate) fn aggregate_text(aggregate: &Aggregate) -> String {
    let mut out = String::new();
    write_aggregate(&mut out, aggregate);
    out
}

fn write_aggregate(out: &mut String, a: &Aggregate) {
    out.push_str(a.func.name());
    out.push('(');
    match &a.source {
        Source::Event(name) => {
            out.push_str("event ");
            write_string(out, name);
        }
        Source::Channel(name) => {
            out.push_str("channel ");
            write_string(out, name);
        }
        Source::AnyEvent => out.push_str("any event"),
    }
    if let AggFunc::Sum(p) | AggFunc::Avg(p) | AggFunc::Min(p) | AggFunc::Max(p) = &a.func {
        out.push_str(", ");
        write_path(out, &p.node);
    }
    if let Some(filter) = &a.filter {
        out.push_str(" where ");
        write_expr(out, filter, 0);
    }
    if let Some(d) = a.within {
        out.push_str(" within ");
        write_literal(out, &Literal::Duration(d));
    }
    out.push(')');
}

pub(crate) fn write_path(out: &mut String, path: &Path) {
    out.push_str(path.root.name());
    for key in &path.keys {
        out.push('.');
        if is_bare_key(key) {
            out.push_str(key);
        } else {
            write_string(out, key);
        }
    }
}

pub(crate) fn write_literal(out: &mut String, literal: &Literal) {
    match literal {
        Literal::String(s) => write_string(out, s),
        // `Display` for f64 is the shortest text that reads back to the same number, and
        // never uses an exponent.
        Literal::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Literal::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Literal::Date(ms) => out.push_str(&dates::format(*ms)),
        Literal::Duration(d) => {
            let _ = write!(out, "{}{}", d.amount, d.unit.suffix());
        }
        Literal::List(items) => write_list(out, items.iter()),
    }
}

fn write_list<'a>(out: &mut String, items: impl Iterator<Item = &'a Literal>) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_literal(out, item);
    }
    out.push(']');
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
