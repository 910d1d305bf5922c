//! Segments (audiences): the rule language and its incremental evaluation.
//!
//! A segment is one boolean expression over a profile, for example
//!
//! ```text
//! count(event "Order Completed" where channel == "store" within 90d) >= 2
//!   and p_alive < 0.4 and count(event "Email Sent" within 7d) == 0
//! ```
//!
//! The crate is pure (no I/O, no async); the product wires it to the store and the event
//! pipeline. `docs/segments.md` is the language reference. The modules, in the order data
//! flows through them:
//!
//! - `ast`: the syntax tree ([`Expr`], [`Operand`], [`Aggregate`], …). Positions ride in
//!   [`Spanned`] and do not take part in equality.
//! - `lexer`, `parser`: [`parse`] turns text into an [`Expr`]; every [`Error`] has a line
//!   and column and shows the source line with a caret.
//! - `format`: [`format()`], the canonical one-line form; `parse(format(x)) == x`.
//! - `check`: static types ([`Type`]), the computed traits a definition may name
//!   ([`Schema`]), [`check`] and [`compile`] (parse + check). Checking lowers the tree
//!   into the evaluator's form.
//! - `lowered`: that form (conditions over term and segment indices), run-time values
//!   ([`AggValue`] among them), their comparison rules, and when time alone flips a node.
//! - `terms`: [`Term`]s, the aggregates segments share under a stable [`TermKey`], and the
//!   [`EventFacts`] a term's filter sees.
//! - `catalog`: [`Catalog`], every saved segment checked together: references resolved,
//!   cycles refused, a dependency order, aggregate terms shared by canonical text under a
//!   stable [`TermKey`], an index from events to terms, and [`Catalog::affected`].
//! - `aggregates`: [`ProfileAggregates`], a profile's per-term state, updated by
//!   [`ProfileAggregates::observe`] one event ([`EventFacts`]) at a time in any order.
//! - `eval`: [`Catalog::evaluate`] over a [`ProfileView`] in dependency order, and
//!   [`ProfileView::next_boundary`], the next instant time alone can change an answer.

mod aggregates;
mod ast;
mod catalog;
mod check;
mod dates;
mod error;
mod eval;
mod format;
mod lexer;
mod lowered;
mod parser;
mod slug;
mod terms;

pub use aggregates::ProfileAggregates;
pub use ast::{
    AggFunc, Aggregate, Builtin, CmpOp, Duration, DurationUnit, Expr, Field, Literal, Operand,
    Path, PathRoot, Source, Span, Spanned, TextOp, TimeOp, TimeRef,
};
pub use catalog::{Catalog, CatalogError, Change, SegmentId, SegmentSet};
pub use check::{Schema, Type, check, compile};
pub use error::{Error, ErrorKind, Language, Text};
pub use eval::{Memberships, ProfileView};
pub use format::format;
pub use lowered::AggValue;
pub use parser::{KEYWORDS, parse, parse_duration};
pub use slug::{DRAFT_SLUG, MAX_SLUG_BYTES, SlugKind, check_slug, check_slug_of};
pub use terms::{EventFacts, Term, TermKey};
