//! `prossimo journey` on a real store: the documented examples, problems named by file,
//! step and field, and a journey's life.

use std::path::PathBuf;

use crate::common::{prossimo, text};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/journeys/{name}.json"))
}

#[test]
fn journey_command_checks_saves_publishes_and_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let cart = example("abandoned-cart");
    let out = prossimo(data, &["journey", "validate", cart.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("a valid journey of 6 step(s)"), "{stdout}");

    // The win-back example names audiences this store does not have: each problem with
    // the file, the field and, inside a condition, where.
    let win_back = example("win-back");
    let out = prossimo(data, &["journey", "validate", win_back.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr
            .contains("win-back.json: trigger.audience_entered: there is no audience \"lapsing\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "exit_when.condition: there is no audience \"complained\" (line 1, column 9)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("step \"still-away\", until.condition: there is no audience \"lapsing\""),
        "{stderr}"
    );

    // Not a journey's shape: the file, its line and column, and the field.
    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, "{\n  \"trigger\": \"api\",\n  \"stepz\": []\n}\n").unwrap();
    let out = prossimo(data, &["journey", "save", "typo", typo.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("typo.json:3:"), "{stderr}");
    assert!(stderr.contains("stepz"), "{stderr}");

    let out = prossimo(
        data,
        &[
            "journey",
            "save",
            "abandoned-cart",
            cart.to_str().unwrap(),
            "--name",
            "Carrello abbandonato",
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let out = prossimo(data, &["journey", "publish", "abandoned-cart"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("published abandoned-cart v1 (published)"),
        "{stdout}"
    );
    let out = prossimo(data, &["journey", "pause", "abandoned-cart"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = prossimo(data, &["journey", "pause", "abandoned-cart"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("a paused journey cannot be paused"),
        "{stderr}"
    );

    let out = prossimo(data, &["journey", "list"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("abandoned-cart") && stdout.contains("paused") && stdout.contains("v1"),
        "{stdout}"
    );
    let out = prossimo(data, &["journey", "show", "abandoned-cart"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("Carrello abbandonato"), "{stdout}");
    assert!(stdout.contains("\"give-them-an-hour\""), "{stdout}");
    assert!(stdout.contains("publish v1 by cli"), "{stdout}");
}
