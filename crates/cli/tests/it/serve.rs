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

/// Two `prossimo serve` nodes on one PostgreSQL database both ingest, and de-duplication is
/// exact across them: every message sent to both nodes is stored once.
#[test]
fn two_nodes_share_one_postgres_database() {
    let Ok(base) = std::env::var("PROSSIMO_TEST_DATABASE_URL") else {
        eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set");
        return;
    };
    let schema = format!("nodes_{}", std::process::id());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .expect("PROSSIMO_TEST_DATABASE_URL reachable");
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");

    let nodes = [
        Server::start_with(&["--database", &url]),
        Server::start_with(&["--database", &url]),
    ];
    let senders: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(node, server)| {
            let endpoint = server.url("/v1/batch");
            std::thread::spawn(move || {
                let http = client();
                for round in 0..30 {
                    let mut batch: Vec<Value> = (0..40)
                        .map(|i| json!({"type": "track", "messageId": format!("n-{round}-{i}"), "userId": format!("shopper-{}", i % 9),
                                        "anonymousId": format!("device-{i}"), "event": "Viewed"}))
                        .collect();
                    batch.rotate_left(node * 17);
                    let r = http.post(&endpoint).basic_auth(WRITE_KEY, Some("")).json(&json!({"batch": batch})).send().unwrap();
                    assert_eq!(r.status(), 200, "node {node}");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let http = client();
    for (node, server) in nodes.iter().enumerate() {
        let p: Value = http
            .get(server.url("/v1/profiles/user_id:shopper-4"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        // shopper-4 sends messages 4, 13, 22 and 31 of each of the 30 rounds.
        assert_eq!(p["event_count"], 30 * 4, "node {node}: {p}");
    }
    let count: i64 = admin
        .query_one(&format!("SELECT COUNT(*) FROM {schema}.events"), &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 30 * 40);
    let profiles: i64 = admin
        .query_one(
            &format!("SELECT COUNT(*) FROM {schema}.profiles WHERE merged_into IS NULL"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(profiles, 9);
    drop(nodes);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

/// `prossimo users` manages console users: create with a role, refuse a short password or a
/// taken e-mail (naming why), change the role, disable.
#[test]
fn users_command_manages_console_users() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let users = |args: &[&str], password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_prossimo"));
        command
            .arg("--data-dir")
            .arg(dir.path())
            .arg("users")
            .args(args)
            .env_remove("PROSSIMO_DATABASE")
            .env("PROSSIMO_LOG", "warn");
        match password {
            Some(p) => command.env("PROSSIMO_USER_PASSWORD", p),
            None => command.env_remove("PROSSIMO_USER_PASSWORD"),
        };
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = users(
        &["create", "Anna@Example.it", "--role", "marketer"],
        Some("a long enough password"),
    );
    assert!(ok, "{text}");
    let (ok, text) = users(&["create", "bruno@example.it"], Some("short"));
    assert!(!ok && text.contains("at least 10 characters"), "{text}");
    let (ok, text) = users(
        &["create", "anna@example.it"],
        Some("another long password"),
    );
    assert!(!ok && text.contains("already exists"), "{text}");
    let (ok, text) = users(&["set-role", "anna@example.it", "admin"], None);
    assert!(ok, "{text}");
    let (ok, text) = users(&["disable", "anna@example.it"], None);
    assert!(ok, "{text}");
    let (_, list) = users(&["list"], None);
    assert!(
        list.contains("anna@example.it") && list.contains("admin") && list.contains("disabled"),
        "{list}"
    );
    let (ok, text) = users(&["set-role", "anna@example.it", "owner"], None);
    assert!(!ok && text.contains("unknown role"), "{text}");
}
