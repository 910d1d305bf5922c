//! The one slug rule. A slug names a segment in URLs, in `segment "slug"` and in the
//! console's pages; the store, the catalog, the API, the console and the CLI all ask here.

use crate::error::{Text, text};

/// The slug a definition being checked or previewed stands under (never a saved one's:
/// saved slugs start with a letter or digit).
pub const DRAFT_SLUG: &str = "_draft";

/// What a slug names: how the error calls it in both languages, and the console pages
/// under its path that a slug may not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlugKind {
    pub english: &'static str,
    pub italian: &'static str,
    /// The console's path of this kind (`/audiences`), whose page names are reserved.
    pub path: &'static str,
    pub reserved: &'static [&'static str],
}

impl SlugKind {
    pub const SEGMENT: SlugKind = SlugKind {
        english: "segment",
        italian: "segmento",
        path: "/audiences",
        reserved: &["new", "check"],
    };
    pub const JOURNEY: SlugKind = SlugKind {
        english: "journey",
        italian: "percorso",
        path: "/journeys",
        reserved: &["new", "check"],
    };
    pub const MESSAGE: SlugKind = SlugKind {
        english: "message",
        italian: "messaggio",
        path: "/messages",
        reserved: &["new", "check", "preview"],
    };
}

/// The longest slug, in bytes.
pub const MAX_SLUG_BYTES: usize = 64;

/// A segment's slug: see [`check_slug_of`].
pub fn check_slug(slug: &str) -> Result<(), Text> {
    check_slug_of(SlugKind::SEGMENT, slug)
}

/// A slug of `kind`: 1 to 64 lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit, and not a console page's name. The error says what to write instead.
pub fn check_slug_of(kind: SlugKind, slug: &str) -> Result<(), Text> {
    let SlugKind {
        english,
        italian,
        path,
        reserved,
    } = kind;
    if reserved.contains(&slug) {
        return Err(text!(
            "{english} slug {slug:?} is reserved (the console's {path}/{slug} page); choose another",
            "lo slug {slug:?} di un {italian} è riservato (la pagina {path}/{slug} della console); scegline un altro"
        ));
    }
    let valid = !slug.is_empty()
        && slug.len() <= MAX_SLUG_BYTES
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && slug
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(text!(
            "{english} slug {slug:?}: use 1 to {MAX_SLUG_BYTES} lowercase letters, digits, '-' or '_', starting with a letter or digit",
            "slug {slug:?} di un {italian}: usa da 1 a {MAX_SLUG_BYTES} lettere minuscole, cifre, '-' o '_', iniziando con una lettera o una cifra"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_lowercase_words_that_name_no_console_page() {
        for good in ["vip", "at-risk_2", "9lives", &"a".repeat(64)] {
            assert_eq!(check_slug(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "VIP",
            "-x",
            "_x",
            "a b",
            "città",
            "new",
            "check",
            &"a".repeat(65),
            DRAFT_SLUG,
        ] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }
}
