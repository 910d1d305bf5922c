//! Timer benchmark (issue #16 item 10 (c) and (d), BENCHMARKS.md "Journey timers"),
//! driven by `scripts/bench-timers.sh`: N instances of a published journey waiting in a
//! one-hour delay on a fresh embedded store (entered through the same `enter`, `advance`
//! and `record` the runner uses, in transactions of 10,000), then the clock moves past
//! their hour and the real journey runner fires them. Reports what the waiting instances
//! cost on disk, how fast their timers fire (steps per second, each firing completing
//! the delay and the exit), how long a restart half-way takes until timers fire again,
//! the process's memory, and one JSON line (`{"bench": "timers", ...}`).
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use prossimo_bus::Bus;
use prossimo_identity::IdentityConfig;
use prossimo_journeys::{
    Entrant, EventSeen, Facts, Input, JourneyInput, JourneyRunner, RunnerConfig, advance,
    check_definition, enter, publish_journey, record, save_journey,
};
use prossimo_model::{Clock, ManualClock};
use prossimo_store::{Location, Store, WriteDomain};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Instances waiting.
    #[arg(long, default_value_t = 1_000_000)]
    instances: u64,
    /// Customers they belong to (each with instances for several carts).
    #[arg(long, default_value_t = 100_000)]
    customers: u64,
}

/// Nothing is known of anyone: the journey asks nothing.
struct Nobody;

impl Facts for Nobody {
    fn holds(&self, _: &str) -> bool {
        false
    }
    fn passes(&self, _: &str, _: &EventSeen) -> bool {
        false
    }
    fn zone(&self) -> chrono_tz::Tz {
        chrono_tz::Europe::Rome
    }
    fn date_trait(&self, _: &str) -> Option<i64> {
        None
    }
}

fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    if std::env::var_os("TIMERBENCH_TRACE").is_some() {
        eprintln!("waiting until {what}");
    }
    while !done() {
        assert!(started.elapsed() < limit, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("prossimo-timerbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let t0 = 1_800_000_000_000_i64;
    let clock = Arc::new(ManualClock::at(t0));
    let store = Arc::new(
        Store::open(&Location::DataDir(dir.clone()), IdentityConfig::default())?
            .with_clock(clock.clone() as Arc<dyn Clock>),
    );
    store.bootstrap(None, None)?;
    let definition = json!({
        "trigger": {"event": {"name": "Checkout Started"}},
        "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
        "steps": [
            {"id": "an-hour", "type": "delay", "for": "1h", "next": "done"},
            {"id": "done", "type": "exit"}
        ]
    });
    save_journey(
        &store,
        None,
        &JourneyInput {
            slug: "bench".into(),
            name: "Bench".into(),
            description: String::new(),
            definition: definition.clone(),
        },
        false,
        "bench",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (record_, version) =
        publish_journey(&store, None, "bench", "bench").map_err(|e| anyhow::anyhow!("{e}"))?;
    let journey = check_definition(&store, &definition).map_err(|e| anyhow::anyhow!("{e}"))?;
    let disk_before = dir_bytes(&dir);

    // N instances entering at t0 and waiting an hour.
    let entering = Instant::now();
    let trigger = json!({"type": "track", "event": "Checkout Started"});
    for first in (0..args.instances).step_by(10_000) {
        let last = (first + 10_000).min(args.instances);
        store.write_transaction(WriteDomain::Decisions, |conn| {
            for n in first..last {
                let key = format!("cart-{n}");
                let entrant = Entrant {
                    journey_id: record_.id,
                    version,
                    profile_id: 1 + i64::try_from(n % args.customers).unwrap_or(0),
                    key: Some(&key),
                    trigger: &trigger,
                };
                let Ok(mut stored) = enter(conn, &journey, &entrant, t0)? else {
                    continue;
                };
                let actions = advance(&journey, &mut stored.instance, Input::Enter, t0, &Nobody);
                record(conn, &stored, &actions, t0)?;
            }
            Ok(())
        })?;
    }
    let entered_in = entering.elapsed();
    // What the instances' rows take on disk, the write-ahead log included.
    let disk_after = dir_bytes(&dir);
    let bytes_per_instance =
        (disk_after.saturating_sub(disk_before)) as f64 / args.instances as f64;
    let rss_waiting = rss_mib("VmRSS:");
    eprintln!(
        "{} instances waiting, entered in {:.1} s ({:.0}/s); {:.0} bytes each on disk; RSS {:.0} MiB",
        args.instances,
        entered_in.as_secs_f64(),
        args.instances as f64 / entered_in.as_secs_f64(),
        bytes_per_instance,
        rss_waiting
    );

    // Their hour is up: the runner fires them; half-way it is stopped and started again.
    clock.set(t0 + 3_600_000 + 1);
    let bus = Bus::new();
    let config = RunnerConfig {
        poll: Duration::from_millis(200),
        ..RunnerConfig::default()
    };
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let firing = Instant::now();
    let runner = JourneyRunner::spawn(
        Arc::clone(&store),
        Arc::clone(&clock_dyn),
        config.clone(),
        &bus,
    );
    let first_fired = wait_until("the first timers fired", Duration::from_secs(600), || {
        runner.status().timers_fired > 0
    });
    let half = args.instances / 2;
    let limit = Duration::from_secs(3_600);
    wait_until("half the timers fired", limit, || {
        let status = runner.status();
        if let Some(error) = &status.last_error {
            panic!("the runner failed: {error}");
        }
        status.timers_fired >= half
    });
    let stopping = Instant::now();
    runner.stop();
    let stopped_in = stopping.elapsed();
    let first_half = firing.elapsed();
    // Read once stopped: the pass under way when asked to stop is written first.
    let fired_first = runner.status().timers_fired;
    let restarting = Instant::now();
    let runner = JourneyRunner::spawn(Arc::clone(&store), clock_dyn, config, &bus);
    let until_firing = wait_until("a timer fired after the restart", limit, || {
        runner.status().timers_fired > 0
    });
    let rest = args.instances - fired_first;
    wait_until("every timer fired", limit, || {
        runner.status().timers_fired >= rest
    });
    let second_half = restarting.elapsed();
    runner.stop();
    let fired_per_second = args.instances as f64 / (first_half + second_half).as_secs_f64();
    // Each firing completes the delay and the exit step.
    let steps_per_second = 2.0 * fired_per_second;
    let peak = rss_mib("VmHWM:");
    eprintln!(
        "fired {} timers in {:.1} s: {:.0} timers/s, {:.0} steps/s; first timers {:.2} s after the start; restart half-way: stop {:.2} s, timers again {:.2} s after; peak RSS {:.0} MiB",
        args.instances,
        (first_half + second_half).as_secs_f64(),
        fired_per_second,
        steps_per_second,
        first_fired.as_secs_f64(),
        stopped_in.as_secs_f64(),
        until_firing.as_secs_f64(),
        peak
    );
    println!(
        "{}",
        json!({
            "bench": "timers",
            "instances": args.instances,
            "customers": args.customers,
            "entered_per_second": (args.instances as f64 / entered_in.as_secs_f64()).round(),
            "disk_bytes_per_instance": bytes_per_instance.round(),
            "rss_mib_waiting": rss_waiting.round(),
            "timers_per_second": fired_per_second.round(),
            "steps_per_second": steps_per_second.round(),
            "start_first_timer_seconds": (first_fired.as_secs_f64() * 100.0).round() / 100.0,
            "restart_stop_seconds": (stopped_in.as_secs_f64() * 100.0).round() / 100.0,
            "restart_first_timer_seconds": (until_firing.as_secs_f64() * 100.0).round() / 100.0,
            "peak_rss_mib": peak.round(),
        })
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
