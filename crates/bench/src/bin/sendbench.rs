//! Send benchmark (issue #16 item 10 (b), BENCHMARKS.md "Sending e-mail"), driven by
//! `scripts/bench-send.sh`: N customers on a fresh embedded store, one marketing e-mail
//! owed to each (MJML rendered per person with Liquid, text part, tracked links and pixel,
//! one-click unsubscribe, DKIM signature), handed by the real sender over pooled SMTP
//! connections to a local SMTP sink (postfix's `smtp-sink`). Reports e-mails per second
//! from the first claim to the last recorded outcome, the sender's CPU time and the
//! process's peak memory, and one JSON line (`{"bench": "send", ...}`).
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use prossimo_bus::{Bus, Happened};
use prossimo_identity::IdentityConfig;
use prossimo_messages::{
    Channel, Channels, Content, DkimKey, EmailConfig, Format, MessageInput, MessageSender,
    Messages, NewSend, Origin, SenderConfig, owe,
};
use prossimo_model::{Limits, parse_batch};
use prossimo_store::{Incoming, Location, Store, WriteDomain};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// E-mails to send (one customer each).
    #[arg(long, default_value_t = 100_000)]
    sends: u64,
    /// The SMTP sink.
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: String,
    /// SMTP connections kept open.
    #[arg(long, default_value_t = 8)]
    connections: u32,
    /// A DKIM key (PEM) to sign with; none: unsigned.
    #[arg(long)]
    dkim_key: Option<std::path::PathBuf>,
}

const BODY: &str = r#"<mjml><mj-body><mj-section><mj-column>
  <mj-text font-size="20px">Ciao {{ profile.first_name | default: "cliente" }},</mj-text>
  <mj-text>da {{ profile.city | default: "noi" }} ti aspettano le novità della stagione, con il 15% per te fino a domenica.</mj-text>
  <mj-button href="https://negozio.example/novita?utm_source=email">Scopri le novità</mj-button>
  <mj-text font-size="11px"><a href="{{ unsubscribe_url }}">Disiscriviti</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"#;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let fields: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    let store = Arc::new(Store::open(
        &Location::DataDir(dir.clone()),
        IdentityConfig::default(),
    )?);
    let source = store.bootstrap(None, None)?.source.id;
    let cities = ["Milano", "Roma", "Torino", "Napoli", "Bologna"];
    let loading = Instant::now();
    for first in (0..args.sends).step_by(2_500) {
        let batch: Vec<_> = (first..(first + 2_500).min(args.sends))
            .map(|n| {
                json!({"type": "identify", "userId": format!("c{n}"), "messageId": format!("id-{n}"),
                       "traits": {"email": format!("c{n}@example.it"), "first_name": "Giulia", "city": cities[(n % 5) as usize]}})
            })
            .collect();
        let body = json!({ "batch": batch }).to_string();
        let parsed = parse_batch(body.as_bytes(), chrono::Utc::now(), &Limits::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let incoming: Vec<Incoming> = parsed
            .messages
            .into_iter()
            .map(|m| Incoming::new(source, m, store.identity(), store.money()))
            .collect::<Result<_, _>>()?;
        store.ingest(&incoming)?;
    }
    Messages::of(&store)?
        .create(&MessageInput {
            slug: "season".into(),
            name: "Season".into(),
            description: String::new(),
            content: Content {
                channel: Channel::Email,
                subject: Some("{{ profile.first_name }}, le novità della stagione".into()),
                body: BODY.into(),
                format: Format::Mjml,
                destination: None,
            },
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = store.now_ms();
    let ids: Vec<i64> = (1..=i64::try_from(args.sends)?).collect();
    for chunk in ids.chunks(10_000) {
        store.write_transaction(WriteDomain::Decisions, |conn| {
            for &profile in chunk {
                owe(
                    conn,
                    &NewSend {
                        idempotency_key: format!("bench/{profile}"),
                        profile_id: profile,
                        origin: Origin::Test,
                        channel: Channel::Email,
                        template: "season".into(),
                        topic: Some("offers".into()),
                        transactional: false,
                        in_quiet_hours: prossimo_messages::InQuietHours::Wait,
                        context: json!({}),
                    },
                    now,
                )?;
            }
            Ok(())
        })?;
    }
    println!(
        "loaded {} customers and owed {} e-mails in {:.1} s",
        args.sends,
        args.sends,
        loading.elapsed().as_secs_f64()
    );

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dkim = args
        .dkim_key
        .as_ref()
        .map(|path| -> Result<DkimKey> {
            Ok(DkimKey {
                domain: "negozio.example".into(),
                selector: "bench".into(),
                pem: std::fs::read_to_string(path).context("the DKIM key")?,
            })
        })
        .transpose()?;
    let email = EmailConfig {
        from: "Negozio <news@negozio.example>".into(),
        smtp_url: Some(format!("smtp://{}", args.smtp)),
        folder: dir.join("mail"),
        connections: args.connections,
        timeout: Duration::from_secs(30),
        dkim,
        links_base: Some("https://crm.negozio.example".into()),
        tracking: true,
        return_path: None,
        bounce_listen: None,
    };
    let bus = Bus::new();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let sender = {
        let _inside = tokio.enter();
        let channels = Arc::new(Channels::open(Some(&email), None)?);
        MessageSender::start(
            Arc::clone(&store),
            channels,
            SenderConfig {
                concurrency: args.connections as usize * 4,
                ..SenderConfig::default()
            },
            &bus,
        )
    };
    bus.publish(Happened::MessagesOwed);
    loop {
        let status = sender.status();
        let done = status.sent + status.skipped + status.failed;
        if done >= args.sends {
            break;
        }
        if let Some(error) = status.last_error {
            eprintln!("sender: {error}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let status = sender.status();
    tokio.block_on(sender.stop());
    // The SMTP pool's connections close on the runtime they were opened on.
    {
        let _inside = tokio.enter();
        drop(sender);
    }
    let rate = status.sent as f64 / seconds;
    println!(
        "sent {} e-mails ({} skipped, {} failed, {} retried) in {seconds:.1} s: {rate:.0} e-mails/s; {cpu:.1} CPU s ({:.2} ms CPU per e-mail); peak RSS {:.0} MiB",
        status.sent,
        status.skipped,
        status.failed,
        status.retried,
        cpu * 1000.0 / status.sent.max(1) as f64,
        peak_rss_mib()
    );
    println!(
        "{}",
        json!({"bench": "send", "sends": args.sends, "sent": status.sent, "seconds": seconds,
               "per_second": rate, "cpu_seconds": cpu, "peak_rss_mib": peak_rss_mib(),
               "connections": args.connections, "dkim": args.dkim_key.is_some()})
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("prossimo-sendbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
