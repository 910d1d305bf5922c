//! `prossimo serve` over a real socket, configured by environment and file.

use serde_json::{Value, json};

use crate::common::{ADMIN_TOKEN, Server, WRITE_KEY, client, prossimo};

#[test]
fn serve_ingests_over_http_and_keys_are_manageable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let http = client();
    let r = http
        .post(server.url("/v1/identify"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&json!({"userId": "s1", "traits": {"email": "s1@example.it"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = http
        .get(server.url("/v1/profiles/user_id:s1"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(p["traits"]["email"], "s1@example.it");
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("prossimo_messages_stored_total 1"),
        "{metrics}"
    );
    drop(server);

    let created = prossimo(&data, &["keys", "create-source", "till-export"]);
    assert!(created.status.success());
    let key = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("wk_"));
    let listed = String::from_utf8(prossimo(&data, &["keys", "list"]).stdout).unwrap();
    assert!(listed.contains("till-export") && listed.contains(&key));
    let dup = prossimo(&data, &["keys", "create-source", "till-export"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
}

#[test]
fn a_bad_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prossimo.toml");
    std::fs::write(&config, "[identity]\nphone_region = \"Atlantis\"\n").unwrap();
    let out = prossimo(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap(), "keys", "list"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("phone_region"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
