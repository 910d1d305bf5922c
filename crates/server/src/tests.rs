//! Checks of the documents the server serves against the code: the error catalogue.
//! Requests themselves are tested in `tests/http`.

use serde_json::Value;

use super::*;

/// One catalogue of error codes: each has its section in docs/errors.md, and the OpenAPI
/// document lists exactly them.
#[test]
fn every_error_code_is_documented_once_and_in_the_openapi_document() {
    use prossimo_model::ErrorCode;
    let doc = include_str!("../../../docs/errors.md");
    let sections: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        sections, codes,
        "docs/errors.md sections, in the catalogue's order"
    );
    for code in ErrorCode::ALL {
        let section = doc
            .split(&format!("## {}\n", code.as_str()))
            .nth(1)
            .unwrap();
        assert!(
            section.starts_with(&code.status().to_string()),
            "{} is answered with {}",
            code.as_str(),
            code.status()
        );
    }
    let spec: Value = serde_json::from_str(&openapi_json()).unwrap();
    let mut listed: Vec<&str> =
        spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    listed.sort_unstable();
    let mut expected = codes.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}
