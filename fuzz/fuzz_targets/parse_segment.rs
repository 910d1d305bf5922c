//! Any UTF-8 text: parsing never panics, whatever parses reads back from its canonical
//! form to the same tree, and checking and cataloguing it never panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prossimo_segments::{Catalog, Schema, check, format, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(src) else {
        return;
    };
    let text = format(&expr);
    let back = match parse(&text) {
        Ok(back) => back,
        Err(e) => panic!("the canonical form {text:?} does not parse:\n{e}"),
    };
    assert_eq!(back, expr, "canonical form {text:?}");
    assert_eq!(format(&back), text);
    let schema = Schema::product_default();
    if check(&expr, &schema).is_ok() {
        let catalog = Catalog::new([("s", src)], &schema);
        assert!(
            catalog.is_ok() || src.contains("segment"),
            "{src:?} checks but does not catalogue: {catalog:?}"
        );
    }
});
