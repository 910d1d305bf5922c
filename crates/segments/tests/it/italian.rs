//! Every error of the language in Italian too, at the same position: the console's
//! marketers read the editor in Italian.

use prossimo_segments::{Catalog, CatalogError, Language, Schema, compile};

/// The Italian and English messages of the error for `src`.
fn messages(src: &str) -> (String, String, (u32, u32)) {
    match compile(src, &Schema::product_default()) {
        Ok(e) => panic!("{src:?} should be refused, parsed as {e:?}"),
        Err(e) => (
            e.message_in(Language::Italian).to_owned(),
            e.message_in(Language::English).to_owned(),
            (e.line(), e.column()),
        ),
    }
}

#[test]
fn errors_read_in_italian() {
    let cases = [
        (
            "p_alive < 0.4\nand traits.x = \"IT\"",
            "atteso: un operatore di confronto (==, !=, <, <=, >, >=, in, contains, starts_with, ends_with, exists, before, after); trovato: \"=\"",
        ),
        (
            "p_alive < \"x\"",
            "atteso: un numero da confrontare con p_alive; trovato: una stringa (\"x\")",
        ),
        (
            "p_alivee < 0.4",
            "nome \"p_alivee\" sconosciuto; forse intendevi p_alive?",
        ),
        (
            "last_seen before 2026-02-30",
            "data \"2026-02-30\" non valida (scrivi AAAA-MM-GG o un timestamp RFC 3339 come 2026-01-31T09:30:00Z, anni da 0001 a 9999)",
        ),
        (
            "count(event \"Order Completed\" where traits.vip == true) >= 1",
            "traits.vip non si può usare dentro where: un filtro vede solo l'evento (properties.<path>, channel, event, type)",
        ),
        ("traits.tags in []", "una lista non può essere vuota"),
        (
            "(p_alive < 0.4",
            "atteso: \")\" per chiudere la \"(\" alla riga 1, colonna 1; trovato: la fine del testo",
        ),
    ];
    for (src, italian) in cases {
        assert_eq!(messages(src).0, italian, "{src:?}");
    }
}

/// One definition per kind of error the lexer, the parser and the checker give: each has
/// an Italian message of its own, not the English one, at the same place.
#[test]
fn every_kind_of_error_has_its_italian_words() {
    let refused = [
        "traits.name == \"open",
        "traits.name == \"a\\q\"",
        "traits.name == \"\\u{zz}\"",
        "p_alive == 1.",
        &format!("p_alive == 1{}", "0".repeat(400)),
        "last_seen before 90x",
        "last_seen before 1.5d",
        "last_seen before 99999d",
        "last_seen before 0d",
        "last_seen before 2026-1-1",
        "traits. == 1",
        "p_alive < 0.4 p_alive",
        &format!("{}a == 1{}", "(".repeat(40), ")".repeat(40)),
        &vec!["a == 1"; 600].join(" and "),
        "segment vip",
        "== 1",
        "p_alive <",
        "traits.x not 1",
        "traits.x contains",
        "last_seen before foo",
        "p_alive = 1",
        "foo.bar == 1",
        "traits == 1",
        "traits.x in [[1]]",
        "traits.x in [1 2]",
        "traits.x in 1",
        "count event \"X\") > 1",
        "sum(event \"X\") > 1",
        "sum(event \"X\", 3) > 1",
        "sum(event \"X\", foo.bar) > 1",
        "count(event \"X\" within) > 1",
        "count(event \"X\" within 3d where) > 1",
        "count(event X) > 1",
        "count(channel X) > 1",
        "count(any x) > 1",
        "count(foo) > 1",
        "count(event \"X\" where segment \"vip\") > 1",
        "p_alive",
        "rfm_segment > \"a\"",
        "p_alive in [1, \"a\"]",
        "p_alive contains \"a\"",
        "traits.x contains [1]",
        "traits.x contains 3d",
        "p_alive before 3d",
        "count(event \"X\" where properties.at before 3d) > 1",
        "traits.x == [1, 2]",
        "traits.x == 3d",
        "properties.x == 1",
        "nobody_knows == 1",
        "count(event \"X\" where p_alive > 1) > 1",
        "count(event \"X\" where first_seen > 2026-01-01) > 1",
        "channel == \"web\"",
        "count(event \"X\" where count(event \"Y\") > 1) > 1",
        "sum(event \"X\", traits.x) > 1",
        "traits.x == true + 1",
    ];
    let mut wrong = Vec::new();
    for src in refused {
        match compile(src, &Schema::product_default()) {
            Ok(_) => wrong.push(format!("{src:?} was accepted")),
            Err(e) => {
                let english = e.message_in(Language::English);
                let italian = e.message_in(Language::Italian);
                if italian.is_empty() || italian == english {
                    wrong.push(format!("{src:?} has no Italian words: {english}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The catalog's errors point into the definition that has them, in Italian too.
#[test]
fn a_catalog_names_an_unknown_segment_in_italian() {
    let refused = Catalog::new(
        [("vip", "segment \"vipp\" and p_alive > 0.5")],
        &Schema::product_default(),
    );
    let Err(CatalogError::Definition { slug, error }) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(slug, "vip");
    assert_eq!(
        error.message_in(Language::Italian),
        "segmento \"vipp\" sconosciuto; forse intendevi \"vip\"?"
    );
}

/// A catalog's own refusals read in Italian too; in English they are the display.
#[test]
fn a_cycle_is_named_in_italian() {
    let refused = Catalog::new(
        [("a", "segment \"b\""), ("b", "segment \"a\"")],
        &Schema::product_default(),
    )
    .unwrap_err();
    assert_eq!(refused.message_in(Language::English), refused.to_string());
    assert_eq!(
        refused.message_in(Language::Italian),
        refused.to_string().replace(
            "membership cycle: segment",
            "ciclo di appartenenza: segmento"
        )
    );
    assert!(matches!(refused, CatalogError::Cycle { .. }), "{refused:?}");
}
