//! Checks of the documents the server serves against the code: the error catalogue and
//! the OpenAPI paths. Requests themselves are tested in `tests/http`.

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
    let spec: Value = serde_json::from_str(OPENAPI).unwrap();
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

/// The OpenAPI document lists exactly the paths the router serves (parameter names aside).
#[test]
fn the_openapi_document_lists_exactly_the_served_paths() {
    let normalise = |path: &str| -> String {
        let mut out = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                c if !in_param => out.push(c),
                _ => {}
            }
        }
        out
    };
    let served: std::collections::BTreeSet<String> = crate::api::areas()
        .iter()
        .flat_map(|area| area.paths.iter().copied())
        .chain(["/health", "/ready", "/metrics"])
        .map(normalise)
        .collect();
    let spec: Value = serde_json::from_str(OPENAPI).unwrap();
    let documented: std::collections::BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| normalise(p))
        .collect();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not documented"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not served"
    );
}
