//! Live audiences on the demo retailer. The engine follows `prossimo demo` while another
//! process ingests it (late events, identities merging as customers identify), then the
//! clock moves on day by day so windows close and `before 60d` conditions flip. At every
//! check its memberships equal a full recompute from the stored events, and the stored
//! memberships equal its own.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use prossimo_decide::Engine;
use prossimo_decide::audiences::{Audiences, SegmentInput};
use prossimo_identity::{IdentityConfig, ProfileId};
use prossimo_model::ManualClock;
use prossimo_store::{Location, Store};

use crate::common::binary;

const DAY: i64 = 86_400_000;
/// 2026-07-01T00:00:00Z: the morning after the demo's history ends.
const START: i64 = 1_782_864_000_000;

const SEGMENTS: [(&str, &str); 8] = [
    (
        "store-regulars",
        r#"count(event "Order Completed" where channel == "store" within 90d) >= 2"#,
    ),
    (
        "big-spenders",
        r#"sum(event "Order Completed", properties.revenue within 365d) > 300"#,
    ),
    ("lapsed", r#"last(event "Order Completed") before 60d"#),
    (
        "milano-web",
        r#"traits.city == "Milano" and count(channel "web" within 30d) > 0"#,
    ),
    (
        "regulars-not-lapsed",
        r#"segment "store-regulars" and not segment "lapsed""#,
    ),
    (
        "shoe-browsers",
        r#"count(event "Product Viewed" where properties.category == "scarpe" within 14d) >= 1
           and count(event "Order Completed" within 14d) == 0"#,
    ),
    ("quiet", "last_seen before 30d and first_seen after 700d"),
    (
        "newsletter-unread",
        r#"traits.newsletter == true and count(event "Email Opened" within 30d) == 0"#,
    ),
];

fn stored(store: &Store) -> HashMap<String, BTreeSet<ProfileId>> {
    let audiences = Audiences::of(store).unwrap();
    let slugs: HashMap<i64, String> = audiences
        .segments()
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.slug))
        .collect();
    let mut out: HashMap<String, BTreeSet<ProfileId>> = slugs
        .values()
        .map(|s| (s.clone(), BTreeSet::new()))
        .collect();
    for (segment, profile) in audiences.current_memberships().unwrap() {
        out.entry(slugs[&segment].clone())
            .or_default()
            .insert(profile);
    }
    out
}

fn step_until_idle(engine: &mut Engine) {
    loop {
        let report = engine.step().unwrap();
        if report.events == 0 && report.merges == 0 {
            break;
        }
    }
}

fn assert_exact(engine: &Engine, store: &Arc<Store>, clock: &Arc<ManualClock>, when: &str) {
    let live = engine.memberships();
    let recomputed = Engine::open(Arc::clone(store), clock.clone()).unwrap();
    for (slug, _) in SEGMENTS {
        assert_eq!(
            live[slug],
            recomputed.memberships()[slug],
            "{when}: segment {slug} differs from a full recompute"
        );
        assert_eq!(live[slug], stored(store)[slug], "{when}: stored {slug}");
    }
}

#[test]
fn incremental_memberships_equal_a_full_recompute_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            &Location::DataDir(dir.path().to_owned()),
            IdentityConfig::default(),
        )
        .unwrap(),
    );
    for (slug, definition) in SEGMENTS {
        Audiences::of(&store)
            .unwrap()
            .create(&SegmentInput {
                slug: slug.into(),
                name: slug.into(),
                description: String::new(),
                definition: definition.into(),
            })
            .unwrap();
    }
    let clock = Arc::new(ManualClock::at(START));
    let mut engine = Engine::open(Arc::clone(&store), clock.clone()).unwrap();

    let mut demo = Command::new(binary())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--customers", "600", "--until", "2026-06-30"])
        .env("PROSSIMO_LOG", "warn")
        .spawn()
        .unwrap();
    // Follow the other process while it writes.
    let mut steps_while_ingesting = 0;
    while demo.try_wait().unwrap().is_none() {
        engine.step().unwrap();
        steps_while_ingesting += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(demo.wait().unwrap().success());
    assert!(steps_while_ingesting > 1);
    step_until_idle(&mut engine);
    assert_exact(&engine, &store, &clock, "after the demo");

    let sizes_at_start: HashMap<String, usize> = engine
        .memberships()
        .into_iter()
        .map(|(s, m)| (s, m.len()))
        .collect();
    for (slug, _) in SEGMENTS {
        assert!(sizes_at_start[slug] > 0, "{slug} is empty on the demo");
    }

    let mut changed_by_time_alone = 0;
    for day in 1..=100 {
        clock.advance(DAY);
        let report = engine.step().unwrap();
        changed_by_time_alone += report.changes.len();
        step_until_idle(&mut engine);
        if day % 25 == 0 {
            assert_exact(&engine, &store, &clock, &format!("day {day}"));
        }
    }
    assert!(
        changed_by_time_alone > 0,
        "windows closing must move members"
    );
    let after = engine.memberships();
    assert!(after["lapsed"].len() > sizes_at_start["lapsed"]);
    assert!(after["store-regulars"].is_empty(), "no orders for 100 days");
}

#[test]
fn segment_command_validates_previews_saves_and_recomputes() {
    use crate::common::{prossimo, text};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(
        prossimo(
            data,
            &["demo", "--customers", "300", "--until", "2026-06-30"]
        )
        .status
        .success()
    );

    // A mistake is reported as file:line:column with the line and a caret; nothing saved.
    let file = dir.path().join("regulars.seg");
    std::fs::write(
        &file,
        "# store regulars\ncount(event \"Order Completed\" where channel == \"store\" within 90d) >= 2\n  and count(event \"Email Sent\" within 7d) = 0\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = prossimo(data, &["segment", "save", "regulars", "--file", path]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{path}:3:43: expected a comparison operator")),
        "{stderr}"
    );
    assert!(
        stderr.contains("  and count(event \"Email Sent\" within 7d) = 0\n"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}^", " ".repeat(44))), "{stderr}");
    let (stdout, _) = text(&prossimo(data, &["segment", "list"]));
    assert!(
        !stdout.lines().any(|l| l.starts_with("regulars ")),
        "nothing saved: {stdout}"
    );
    assert!(
        stdout.contains("store-regulars"),
        "the demo's example audiences: {stdout}"
    );

    std::fs::write(
        &file,
        "count(event \"Order Completed\" where channel == \"store\" within 1000d) >= 2\n  and count(event \"Email Sent\" within 7d) == 0\n",
    )
    .unwrap();
    let (stdout, _) = text(&prossimo(data, &["segment", "validate", "--file", path]));
    assert_eq!(
        stdout.trim(),
        "count(event \"Order Completed\" where channel == \"store\" within 1000d) >= 2 and count(event \"Email Sent\" within 7d) == 0"
    );
    let out = prossimo(
        data,
        &["segment", "preview", "--file", path, "--sample", "2"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let previewed: u64 = stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(previewed > 0, "{stdout}");

    assert!(
        prossimo(
            data,
            &[
                "segment",
                "save",
                "regulars",
                "--file",
                path,
                "--name",
                "Store regulars"
            ]
        )
        .status
        .success()
    );
    let out = prossimo(
        data,
        &[
            "segment",
            "save",
            "loyal-regulars",
            "--definition",
            "segment \"regulars\" and count(event \"Order Completed\") >= 3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let out = prossimo(data, &["segment", "delete", "regulars"]);
    assert!(!out.status.success(), "another segment refers to it");
    assert!(text(&out).1.contains("loyal-regulars"), "{}", text(&out).1);

    let (stdout, _) = text(&prossimo(data, &["segment", "recompute"]));
    let size = |slug: &str| -> usize {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(slug))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{slug} in {stdout}"))
    };
    assert_eq!(
        size("regulars") as u64,
        previewed,
        "preview equals the saved segment"
    );
    assert!(size("loyal-regulars") <= size("regulars"));
    let (members, _) = text(&prossimo(data, &["segment", "members", "regulars"]));
    assert_eq!(members.lines().count(), size("regulars").min(50));
}
