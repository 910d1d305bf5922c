//! Turns a definition into tokens with positions. Literal syntax (strings, numbers, dates,
//! durations) is settled here, so the parser only sees well-formed values.

use crate::ast::{CmpOp, Duration, DurationUnit, Span};
use crate::dates;
use crate::error::{Error, text};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword.
    Word(String),
    /// `root.key.key`, with quoted keys already unescaped.
    Path(String, Vec<String>),
    Str(String),
    Num(f64),
    Date(i64),
    Dur(Duration),
    Cmp(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// A character the language has no use for (`=`, `@`, …); the parser says what it
    /// expected instead.
    Other(char),
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
    /// Byte range in the source, to quote the token in messages.
    pub start: usize,
    pub end: usize,
}

pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A path key that can be written without quotes.
pub(crate) fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(is_word_char)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    column: u32,
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let mut lx = Lexer {
        src,
        pos: 0,
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    loop {
        lx.skip_blanks();
        let span = lx.span();
        let start = lx.pos;
        let Some(c) = lx.peek() else {
            tokens.push(Token {
                tok: Tok::End,
                span,
                start,
                end: start,
            });
            return Ok(tokens);
        };
        let tok = lx.token(c, span)?;
        tokens.push(Token {
            tok,
            span,
            start,
            end: lx.pos,
        });
    }
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn span(&self) -> Span {
        Span {
            line: self.line,
            column: self.column,
        }
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        let src: &'a str = self.src;
        &src[start..self.pos]
    }

    fn token(&mut self, c: char, span: Span) -> Result<Tok, Error> {
        let two = |lx: &mut Self, next: char, yes: Tok, no: Tok| {
            lx.bump();
            if lx.peek() == Some(next) {
                lx.bump();
                yes
            } else {
                no
            }
        };
        Ok(match c {
            '(' | ')' | '[' | ']' | ',' => {
                self.bump();
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    _ => Tok::Comma,
                }
            }
            '=' => two(self, '=', Tok::Cmp(CmpOp::Eq), Tok::Other('=')),
            '!' => two(self, '=', Tok::Cmp(CmpOp::Ne), Tok::Other('!')),
            '<' => two(self, '=', Tok::Cmp(CmpOp::Le), Tok::Cmp(CmpOp::Lt)),
            '>' => two(self, '=', Tok::Cmp(CmpOp::Ge), Tok::Cmp(CmpOp::Gt)),
            '"' => Tok::Str(self.string()?),
            '0'..='9' => self.number(span)?,
            '-' if self.peek_second().is_some_and(|c| c.is_ascii_digit()) => self.number(span)?,
            c if c.is_alphabetic() || c == '_' => self.word()?,
            other => {
                self.bump();
                Tok::Other(other)
            }
        })
    }

    /// A double-quoted string; the opening quote is next.
    fn string(&mut self) -> Result<String, Error> {
        let open = self.span();
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.span();
            match self.bump() {
                None | Some('\n') => {
                    return Err(Error::syntax(
                        text!(
                            "unterminated string (a string ends with \" on the same line)",
                            "stringa non chiusa (una stringa finisce con \" sulla stessa riga)"
                        ),
                        open,
                    ));
                }
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape(at)?),
                Some(c) => out.push(c),
            }
        }
    }

    /// The character after a backslash (already consumed) at `at`.
    fn escape(&mut self, at: Span) -> Result<char, Error> {
        let unknown = |what: String| {
            Error::syntax(
                text!(
                    "unknown escape {what} in a string (use \\\", \\\\, \\n, \\t, \\r or \\u{{...}})",
                    "sequenza di escape {what} sconosciuta in una stringa (usa \\\", \\\\, \\n, \\t, \\r o \\u{{...}})"
                ),
                at,
            )
        };
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('u') => {
                let bad = || {
                    Error::syntax(
                        text!(
                            "invalid unicode escape (write \\u{{...}} with 1 to 6 hex digits of a valid character)",
                            "escape unicode non valido (scrivi \\u{{...}} con da 1 a 6 cifre esadecimali di un carattere valido)"
                        ),
                        at,
                    )
                };
                if self.bump() != Some('{') {
                    return Err(bad());
                }
                let hex = self.take_while(|c| c.is_ascii_hexdigit()).to_owned();
                if self.bump() != Some('}') || hex.is_empty() || hex.len() > 6 {
                    return Err(bad());
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(bad)
            }
            Some(c) if !c.is_control() => Err(unknown(format!("\\{c}"))),
            _ => Err(unknown("\\".to_owned())),
        }
    }

    /// A number, a date or a duration.
    fn number(&mut self, span: Span) -> Result<Tok, Error> {
        let start = self.pos;
        let negative = self.peek() == Some('-');
        if negative {
            self.bump();
        }
        self.take_while(|c| c.is_ascii_digit());
        if !negative && self.peek() == Some('-') {
            return self.date(start, span);
        }
        let mut fraction = false;
        if self.peek() == Some('.') {
            self.bump();
            fraction = true;
            if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                let text = &self.src[start..self.pos];
                return Err(Error::syntax(
                    text!(
                        "invalid number \"{text}\" (digits must follow the decimal point)",
                        "numero \"{text}\" non valido (dopo il punto decimale servono delle cifre)"
                    ),
                    span,
                ));
            }
        }
        let digits_end = self.pos;
        let unit = self.take_while(is_word_char);
        if unit.is_empty() {
            let text = &self.src[start..digits_end];
            return match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Tok::Num(n)),
                _ => Err(Error::syntax(
                    text!(
                        "number \"{text}\" is out of range",
                        "il numero \"{text}\" è fuori dall'intervallo ammesso"
                    ),
                    span,
                )),
            };
        }
        let text = &self.src[start..self.pos];
        let Some(unit) = DurationUnit::from_suffix(unit) else {
            return Err(Error::syntax(
                text!(
                    "unknown duration unit \"{unit}\" in \"{text}\" (use m, h, d or w, as in 90d)",
                    "unità di durata \"{unit}\" sconosciuta in \"{text}\" (usa m, h, d o w, come in 90d)"
                ),
                span,
            ));
        };
        if negative || fraction {
            return Err(Error::syntax(
                text!(
                    "invalid duration \"{text}\" (a duration is a positive whole number followed by m, h, d or w)",
                    "durata \"{text}\" non valida (una durata è un numero intero positivo seguito da m, h, d o w)"
                ),
                span,
            ));
        }
        let too_long = || {
            Error::syntax(
                text!(
                    "duration {text} is too long (at most 10 years: 3653d, 521w, 87672h or 5260320m)",
                    "la durata {text} è troppo lunga (al massimo 10 anni: 3653d, 521w, 87672h o 5260320m)"
                ),
                span,
            )
        };
        let amount: u32 = self.src[start..digits_end]
            .parse()
            .map_err(|_| too_long())?;
        let duration = Duration::new(amount, unit);
        if amount == 0 {
            return Err(Error::syntax(
                {
                    let unit = unit.suffix();
                    text!(
                        "duration {text} is zero (a duration is at least 1{unit})",
                        "la durata {text} è zero (una durata è almeno 1{unit})"
                    )
                },
                span,
            ));
        }
        if duration.ms() > Duration::MAX_MS {
            return Err(too_long());
        }
        Ok(Tok::Dur(duration))
    }

    /// The rest of a date after its year digits.
    fn date(&mut self, start: usize, span: Span) -> Result<Tok, Error> {
        self.take_while(|c| c.is_ascii_digit() || c == '-');
        if matches!(self.peek(), Some('T' | 't'))
            && self.peek_second().is_some_and(|c| c.is_ascii_digit())
        {
            self.take_while(|c| c.is_ascii_digit() || ":.+-TtZz".contains(c));
        }
        let text = &self.src[start..self.pos];
        match dates::parse(text) {
            Some(ms) => Ok(Tok::Date(ms)),
            None => Err(Error::syntax(
                text!(
                    "invalid date \"{text}\" (write YYYY-MM-DD or an RFC 3339 timestamp such as 2026-01-31T09:30:00Z, years 0001 to 9999)",
                    "data \"{text}\" non valida (scrivi AAAA-MM-GG o un timestamp RFC 3339 come 2026-01-31T09:30:00Z, anni da 0001 a 9999)"
                ),
                span,
            )),
        }
    }

    /// A keyword, a name, or a dotted path.
    fn word(&mut self) -> Result<Tok, Error> {
        let word = self.take_while(is_word_char).to_owned();
        if self.peek() != Some('.') {
            return Ok(Tok::Word(word));
        }
        let mut keys = Vec::new();
        while self.peek() == Some('.') {
            self.bump();
            let at = self.span();
            let key = match self.peek() {
                Some('"') => self.string()?,
                _ => self.take_while(is_word_char).to_owned(),
            };
            if key.is_empty() {
                return Err(Error::syntax(
                    text!(
                        "expected a key after \"{word}.\" (a name, or any text in double quotes)",
                        "dopo \"{word}.\" serve una chiave (un nome, o un testo qualsiasi tra virgolette doppie)"
                    ),
                    at,
                ));
            }
            keys.push(key);
        }
        Ok(Tok::Path(word, keys))
    }
}
