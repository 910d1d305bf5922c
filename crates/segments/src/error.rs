use std::fmt;

use crate::ast::Span;

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
    message: String,
    span: Span,
    source_line: Option<String>,
}

impl Error {
    pub(crate) fn syntax(message: impl Into<String>, span: Span) -> Self {
        Error {
            kind: ErrorKind::Syntax,
            message: message.into(),
            span,
            source_line: None,
        }
    }

    pub(crate) fn typing(message: impl Into<String>, span: Span) -> Self {
        Error {
            kind: ErrorKind::Type,
            message: message.into(),
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

    /// What went wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
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
            self.message, self.span.line, self.span.column
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
