use std::fmt;

use crate::ast::Span;

/// The languages the console speaks; a definition's errors are written in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Italian,
}

/// A message written in every [`Language`]: the people who write definitions read the
/// console in Italian, and the API and the CLI speak English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    en: String,
    it: String,
}

impl Text {
    pub(crate) fn new(en: impl Into<String>, it: impl Into<String>) -> Text {
        Text {
            en: en.into(),
            it: it.into(),
        }
    }

    /// The same words in every language: source text, names, operators.
    pub(crate) fn same(words: impl Into<String>) -> Text {
        let words = words.into();
        Text {
            en: words.clone(),
            it: words,
        }
    }

    /// "expected …, found …" in every language.
    pub(crate) fn expected(want: &Text, found: &Text) -> Text {
        Text {
            en: format!("expected {}, found {}", want.en, found.en),
            it: format!("atteso: {}; trovato: {}", want.it, found.it),
        }
    }

    /// This text followed by `more` (already punctuated) in every language.
    pub(crate) fn then(mut self, more: &Text) -> Text {
        self.en.push_str(&more.en);
        self.it.push_str(&more.it);
        self
    }

    pub fn get(&self, language: Language) -> &str {
        match language {
            Language::English => &self.en,
            Language::Italian => &self.it,
        }
    }
}

/// A [`Text`] from an English and an Italian format string, each with the same
/// arguments in scope: `text!("expected {what}", "atteso {what}")`.
macro_rules! text {
    ($en:literal, $it:literal $(,)?) => {
        $crate::error::Text::new(format!($en), format!($it))
    };
}
pub(crate) use text;

/// Whether the text could not be read at all, or was read but makes no sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    Type,
}

/// A parse or type error in one definition, at a 1-based line and column (in characters).
///
/// `Display` gives `"<message> at line L, column C"` and, when the source is known, the
/// source line with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Error {
    kind: ErrorKind,
    message: Text,
    span: Span,
    source_line: Option<String>,
}

impl Error {
    pub(crate) fn syntax(message: Text, span: Span) -> Self {
        Error {
            kind: ErrorKind::Syntax,
            message,
            span,
            source_line: None,
        }
    }

    pub(crate) fn typing(message: Text, span: Span) -> Self {
        Error {
            kind: ErrorKind::Type,
            message,
            span,
            source_line: None,
        }
    }

    /// Attaches the line of `source` the error points at, for the caret display.
    pub fn with_source(mut self, source: &str) -> Self {
        let index = (self.span.line as usize).saturating_sub(1);
        self.source_line = source
            .split('\n')
            .nth(index)
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, without the position (in English).
    pub fn message(&self) -> &str {
        self.message.get(Language::English)
    }

    /// What went wrong, without the position, in `language`.
    pub fn message_in(&self, language: Language) -> &str {
        self.message.get(language)
    }

    pub fn line(&self) -> u32 {
        self.span.line
    }

    pub fn column(&self) -> u32 {
        self.span.column
    }

    /// The first line of the display: the message and the position.
    pub fn summary(&self) -> String {
        format!(
            "{} at line {}, column {}",
            self.message(),
            self.span.line,
            self.span.column
        )
    }

    fn render(&self) -> String {
        let mut out = self.summary();
        if let Some(line) = &self.source_line {
            use fmt::Write;
            // Tabs stay tabs under the caret so it lines up in any terminal.
            let pad: String = line
                .chars()
                .take((self.span.column as usize).saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(out, "\n  {line}\n  {pad}^");
        }
        out
    }
}
