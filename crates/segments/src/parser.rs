//! Recursive-descent parser: `or` < `and` < `not` < comparison.

use crate::ast::{
    AggFunc, Aggregate, Builtin, Duration, Expr, Field, Literal, Operand, Path, PathRoot, Source,
    Span, Spanned, TextOp, TimeOp, TimeRef,
};
use crate::error::{Error, Text, text};
use crate::lexer::{Tok, Token, lex};

/// Deepest nesting of parentheses, `not` and aggregates: bounds the recursion.
const MAX_DEPTH: usize = 32;
/// Most conditions and operators in one definition: bounds the recursion over the tree.
const MAX_NODES: usize = 500;

const COMPARISON_OPERATORS: &str =
    "==, !=, <, <=, >, >=, in, contains, starts_with, ends_with, exists, before, after";

/// The reserved words: none of them can be a computed trait's name.
pub const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "exists",
    "contains",
    "starts_with",
    "ends_with",
    "before",
    "after",
    "segment",
    "where",
    "within",
    "any",
    "true",
    "false",
    "traits",
    "properties",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "first",
    "last",
    "event",
    "channel",
    "type",
    "first_seen",
    "last_seen",
    "first_channel",
];

/// Parses one definition. Errors carry the line and column and the source line.
pub fn parse(src: &str) -> Result<Expr, Error> {
    parse_inner(src).map_err(|e| e.with_source(src))
}

/// Reads a duration written as the language writes one (`90d`, `1h`, `30m`, `2w`), with
/// the language's rules (a positive whole number, at most 10 years) and its errors: the
/// one duration syntax of the product, wherever a duration is set (journeys' delays and
/// timeouts among them).
pub fn parse_duration(src: &str) -> Result<Duration, Error> {
    let tokens = lex(src).map_err(|e| e.with_source(src))?;
    match tokens.as_slice() {
        [
            Token {
                tok: Tok::Dur(duration),
                ..
            },
            Token { tok: Tok::End, .. },
        ] => Ok(*duration),
        _ => Err(Error::syntax(
            text!(
                "{src:?} is not a duration (a positive whole number followed by m, h, d or w, as 90d)",
                "{src:?} non è una durata (un numero intero positivo seguito da m, h, d o w, come 90d)"
            ),
            tokens.first().map(|t| t.span).unwrap_or_default(),
        )
        .with_source(src)),
    }
}

fn parse_inner(src: &str) -> Result<Expr, Error> {
    let tokens = lex(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
        nodes: 0,
    };
    let expr = p.expr()?;
    if !matches!(p.peek().tok, Tok::End) {
        return Err(p.unexpected(|| {
            text!(
                "and, or or the end of the definition",
                "and, or o la fine della definizione"
            )
        }));
    }
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    nodes: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The lexer always ends the list with `End`, and `advance` never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let yes = self.is_word(word);
        if yes {
            self.advance();
        }
        yes
    }

    /// How a token is quoted in "found …".
    fn describe(&self, t: &Token) -> Text {
        let text = self.src.get(t.start..t.end).unwrap_or("");
        match t.tok {
            Tok::End => text!("the end of the input", "la fine del testo"),
            Tok::Str(_) => text!("the string {text}", "la stringa {text}"),
            _ => text!("\"{text}\"", "\"{text}\""),
        }
    }

    /// `expected` is only called for the error: the parser's recursion keeps its frames
    /// small (no message is built on the way down).
    fn unexpected(&self, expected: impl FnOnce() -> Text) -> Error {
        let t = self.peek();
        Error::syntax(Text::expected(&expected(), &self.describe(t)), t.span)
    }

    fn node(&mut self) -> Result<(), Error> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Error::syntax(
                text!(
                    "the definition is too long (at most {MAX_NODES} conditions and operators)",
                    "la definizione è troppo lunga (al massimo {MAX_NODES} condizioni e operatori)"
                ),
                self.peek().span,
            ));
        }
        Ok(())
    }

    /// One level deeper, for the construct that starts at `at`.
    fn enter(&mut self, at: Span) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::syntax(
                text!(
                    "nested too deeply (at most {MAX_DEPTH} levels of parentheses, not and aggregates)",
                    "annidamento troppo profondo (al massimo {MAX_DEPTH} livelli di parentesi, not e aggregati)"
                ),
                at,
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        let mut left = self.and_expr()?;
        while self.eat_word("or") {
            self.node()?;
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, Error> {
        let mut left = self.not_expr()?;
        while self.eat_word("and") {
            self.node()?;
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, Error> {
        let at = self.peek().span;
        if self.eat_word("not") {
            self.node()?;
            self.enter(at)?;
            let inner = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, Error> {
        self.node()?;
        let start = self.peek().clone();
        match &start.tok {
            Tok::LParen => {
                self.advance();
                self.enter(start.span)?;
                let inner = self.expr()?;
                self.depth -= 1;
                if !matches!(self.peek().tok, Tok::RParen) {
                    let (line, column) = (start.span.line, start.span.column);
                    return Err(self.unexpected(|| {
                        text!(
                            "\")\" to close the \"(\" at line {line}, column {column}",
                            "\")\" per chiudere la \"(\" alla riga {line}, colonna {column}"
                        )
                    }));
                }
                self.advance();
                Ok(inner)
            }
            Tok::Word(w) if w == "segment" => {
                self.advance();
                let t = self.peek().clone();
                match t.tok {
                    Tok::Str(slug) => {
                        self.advance();
                        Ok(Expr::Segment(Spanned::at(slug, t.span)))
                    }
                    _ => Err(self.unexpected(|| {
                        text!(
                            "a segment slug in double quotes after segment",
                            "lo slug di un segmento tra virgolette doppie dopo segment"
                        )
                    })),
                }
            }
            _ => {
                let left = self.operand(|| text!(
                    "a condition (a comparison such as p_alive < 0.4, segment \"...\", not ..., or (...))",
                    "una condizione (un confronto come p_alive < 0.4, segment \"...\", not ... o (...))"
                ))?;
                self.predicate(left)
            }
        }
    }

    /// What follows the left operand of a comparison.
    fn predicate(&mut self, left: Spanned<Operand>) -> Result<Expr, Error> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Cmp(op) => {
                let op = *op;
                self.advance();
                let symbol = op.symbol();
                let right =
                    self.operand(|| text!("a value after {symbol}", "un valore dopo {symbol}"))?;
                Ok(Expr::Compare { left, op, right })
            }
            Tok::Word(w) => match w.as_str() {
                "in" => {
                    self.advance();
                    let list = self.in_list()?;
                    Ok(Expr::In {
                        left,
                        negated: false,
                        list,
                    })
                }
                "not" => {
                    self.advance();
                    if self.eat_word("in") {
                        let list = self.in_list()?;
                        Ok(Expr::In {
                            left,
                            negated: true,
                            list,
                        })
                    } else if self.eat_word("exists") {
                        Ok(Expr::Exists {
                            operand: left,
                            negated: true,
                        })
                    } else {
                        Err(self
                            .unexpected(|| text!("in or exists after not", "in o exists dopo not")))
                    }
                }
                "exists" => {
                    self.advance();
                    Ok(Expr::Exists {
                        operand: left,
                        negated: false,
                    })
                }
                "contains" | "starts_with" | "ends_with" => {
                    let op = match w.as_str() {
                        "contains" => TextOp::Contains,
                        "starts_with" => TextOp::StartsWith,
                        _ => TextOp::EndsWith,
                    };
                    self.advance();
                    let keyword = op.keyword();
                    let right = self
                        .operand(|| text!("a value after {keyword}", "un valore dopo {keyword}"))?;
                    Ok(Expr::Text { left, op, right })
                }
                "before" | "after" => {
                    let op = if w == "before" {
                        TimeOp::Before
                    } else {
                        TimeOp::After
                    };
                    self.advance();
                    let right = match self.peek().tok {
                        Tok::Dur(d) => TimeRef::Ago(d),
                        Tok::Date(ms) => TimeRef::At(ms),
                        _ => {
                            let keyword = op.keyword();
                            return Err(self.unexpected(|| text!(
                                "a duration (like 60d) or a date (like 2026-01-01) after {keyword}",
                                "una durata (come 60d) o una data (come 2026-01-01) dopo {keyword}"
                            )));
                        }
                    };
                    self.advance();
                    Ok(Expr::Time { left, op, right })
                }
                "and" | "or" | "within" => Ok(Expr::Test(left)),
                _ => Err(self.expected_operator()),
            },
            Tok::RParen | Tok::End => Ok(Expr::Test(left)),
            _ => Err(self.expected_operator()),
        }
    }

    fn expected_operator(&self) -> Error {
        self.unexpected(|| {
            text!(
                "a comparison operator ({COMPARISON_OPERATORS})",
                "un operatore di confronto ({COMPARISON_OPERATORS})"
            )
        })
    }

    /// A value; `expected` says what the position wants, for the error.
    fn operand(&mut self, expected: impl Fn() -> Text) -> Result<Spanned<Operand>, Error> {
        let t = self.peek().clone();
        let operand = match t.tok {
            Tok::Str(s) => Operand::Literal(Literal::String(s)),
            Tok::Num(n) => Operand::Literal(Literal::Number(n)),
            Tok::Date(ms) => Operand::Literal(Literal::Date(ms)),
            Tok::Dur(d) => Operand::Literal(Literal::Duration(d)),
            Tok::LBracket => {
                let items = self.list()?;
                let list = items.into_iter().map(|l| l.node).collect();
                return Ok(Spanned::at(Operand::Literal(Literal::List(list)), t.span));
            }
            Tok::Path(root, keys) => {
                let root = match root.as_str() {
                    "traits" => PathRoot::Traits,
                    "properties" => PathRoot::Properties,
                    _ => {
                        let path = self.src.get(t.start..t.end).unwrap_or("");
                        return Err(Error::syntax(
                            text!(
                                "unknown path \"{path}\" (paths start with traits. or properties.)",
                                "percorso \"{path}\" sconosciuto (i percorsi iniziano con traits. o properties.)"
                            ),
                            t.span,
                        ));
                    }
                };
                Operand::Path(Path { root, keys })
            }
            Tok::Word(w) => match w.as_str() {
                "true" => Operand::Literal(Literal::Bool(true)),
                "false" => Operand::Literal(Literal::Bool(false)),
                "first_seen" => Operand::Builtin(Builtin::FirstSeen),
                "last_seen" => Operand::Builtin(Builtin::LastSeen),
                "first_channel" => Operand::Builtin(Builtin::FirstChannel),
                "channel" => Operand::Field(Field::Channel),
                "event" => Operand::Field(Field::Event),
                "type" => Operand::Field(Field::Type),
                "count" | "sum" | "avg" | "min" | "max" | "first" | "last" => {
                    self.advance();
                    let aggregate = self.aggregate(&w)?;
                    return Ok(Spanned::at(Operand::Aggregate(Box::new(aggregate)), t.span));
                }
                "traits" | "properties" => {
                    self.advance();
                    return Err(self.unexpected(|| {
                        text!("\".\" and a key after {w}", "\".\" e una chiave dopo {w}")
                    }));
                }
                _ if KEYWORDS.contains(&w.as_str()) => return Err(self.unexpected(&expected)),
                _ => Operand::Name(w),
            },
            _ => return Err(self.unexpected(&expected)),
        };
        self.advance();
        Ok(Spanned::at(operand, t.span))
    }

    /// `[lit, ...]`, never empty; the `[` is next.
    fn list(&mut self) -> Result<Vec<Spanned<Literal>>, Error> {
        let open = self.advance();
        if matches!(self.peek().tok, Tok::RBracket) {
            return Err(Error::syntax(
                text!("a list cannot be empty", "una lista non può essere vuota"),
                open.span,
            ));
        }
        let mut items = Vec::new();
        loop {
            let t = self.peek().clone();
            let literal = match t.tok {
                Tok::Str(s) => Literal::String(s),
                Tok::Num(n) => Literal::Number(n),
                Tok::Date(ms) => Literal::Date(ms),
                Tok::Dur(d) => Literal::Duration(d),
                Tok::Word(w) if w == "true" || w == "false" => Literal::Bool(w == "true"),
                Tok::LBracket => {
                    return Err(Error::syntax(
                        text!(
                            "a list holds literals (strings, numbers, true/false, dates), not lists",
                            "una lista contiene valori (stringhe, numeri, true/false, date), non liste"
                        ),
                        t.span,
                    ));
                }
                _ => {
                    return Err(
                        self.unexpected(|| text!("a literal in the list", "un valore nella lista"))
                    );
                }
            };
            self.advance();
            items.push(Spanned::at(literal, t.span));
            match self.peek().tok {
                Tok::Comma => {
                    self.advance();
                }
                Tok::RBracket => {
                    self.advance();
                    return Ok(items);
                }
                _ => {
                    return Err(self.unexpected(|| {
                        text!("\",\" or \"]\" in the list", "\",\" o \"]\" nella lista")
                    }));
                }
            }
        }
    }

    fn in_list(&mut self) -> Result<Vec<Spanned<Literal>>, Error> {
        if !matches!(self.peek().tok, Tok::LBracket) {
            return Err(self.unexpected(|| {
                text!(
                    "a list such as [\"a\", \"b\"] after in",
                    "una lista come [\"a\", \"b\"] dopo in"
                )
            }));
        }
        self.list()
    }

    /// The parenthesised part of an aggregate; its name was just read.
    fn aggregate(&mut self, name: &str) -> Result<Aggregate, Error> {
        if !matches!(self.peek().tok, Tok::LParen) {
            return Err(self.unexpected(|| text!("\"(\" after {name}", "\"(\" dopo {name}")));
        }
        let open = self.advance();
        self.enter(open.span)?;
        let source = self.source(name)?;
        let func = match name {
            "count" => AggFunc::Count,
            "first" => AggFunc::First,
            "last" => AggFunc::Last,
            _ => {
                if !matches!(self.peek().tok, Tok::Comma) {
                    return Err(self.unexpected(|| text!(
                        "\",\" and a property (like properties.revenue) after the source of {name}",
                        "\",\" e una proprietà (come properties.revenue) dopo la sorgente di {name}"
                    )));
                }
                self.advance();
                let t = self.peek().clone();
                let property = || {
                    text!(
                        "a property path (like properties.revenue)",
                        "il percorso di una proprietà (come properties.revenue)"
                    )
                };
                let Tok::Path(root, keys) = t.tok else {
                    return Err(self.unexpected(property));
                };
                let root = match root.as_str() {
                    "properties" => PathRoot::Properties,
                    "traits" => PathRoot::Traits,
                    _ => return Err(self.unexpected(property)),
                };
                self.advance();
                let path = Spanned::at(Path { root, keys }, t.span);
                match name {
                    "sum" => AggFunc::Sum(path),
                    "avg" => AggFunc::Avg(path),
                    "min" => AggFunc::Min(path),
                    _ => AggFunc::Max(path),
                }
            }
        };
        let filter = if self.eat_word("where") {
            Some(self.expr()?)
        } else {
            None
        };
        let within = if self.eat_word("within") {
            match self.peek().tok {
                Tok::Dur(d) => {
                    self.advance();
                    Some(d)
                }
                _ => {
                    return Err(self.unexpected(|| {
                        text!(
                            "a duration (like 90d) after within",
                            "una durata (come 90d) dopo within"
                        )
                    }));
                }
            }
        } else {
            None
        };
        if !matches!(self.peek().tok, Tok::RParen) {
            let expected = match (&filter, &within) {
                (_, Some(_)) => text!("\")\" in {name}(...)", "\")\" in {name}(...)"),
                (Some(_), None) => text!(
                    "and, or, within or \")\" in {name}(...)",
                    "and, or, within o \")\" in {name}(...)"
                ),
                (None, None) => text!(
                    "where, within or \")\" in {name}(...)",
                    "where, within o \")\" in {name}(...)"
                ),
            };
            return Err(self.unexpected(|| expected));
        }
        self.advance();
        self.depth -= 1;
        Ok(Aggregate {
            func,
            source,
            filter,
            within,
        })
    }

    fn source(&mut self, name: &str) -> Result<Source, Error> {
        let quoted = |p: &mut Self, what: fn() -> Text| match p.peek().tok.clone() {
            Tok::Str(s) => {
                p.advance();
                Ok(s)
            }
            _ => Err(p.unexpected(what)),
        };
        if self.eat_word("event") {
            let what = || {
                text!(
                    "the event name in double quotes after event",
                    "il nome dell'evento tra virgolette doppie dopo event"
                )
            };
            return quoted(self, what).map(Source::Event);
        }
        if self.eat_word("channel") {
            let what = || {
                text!(
                    "the channel name in double quotes after channel",
                    "il nome del canale tra virgolette doppie dopo channel"
                )
            };
            return quoted(self, what).map(Source::Channel);
        }
        if self.eat_word("any") {
            if !self.eat_word("event") {
                return Err(self.unexpected(|| text!("event after any", "event dopo any")));
            }
            return Ok(Source::AnyEvent);
        }
        Err(self.unexpected(|| {
            text!(
                "a source (event \"<name>\", channel \"<name>\" or any event) after {name}(",
                "una sorgente (event \"<nome>\", channel \"<nome>\" o any event) dopo {name}("
            )
        }))
    }
}
