//! `prossimo analyze`: runs the analyses over the store, writes computed traits onto the
//! profiles and prints a summary (or the results as JSON).

use std::io::Write;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use prossimo_analytics::Period;
use prossimo_analytics::dynamics::Granularity;
use prossimo_store::Store;
use prossimo_understand::{Analysis, Options, Outcome, run};

#[derive(Args)]
pub struct AnalyzeArgs {
    /// What to compute: all (default), rfm, clv, cohorts, clusters or dynamics.
    #[arg(default_value = "all")]
    what: String,
    /// Analysis date (YYYY-MM-DD, end of that day UTC) [default: now]. Later orders are ignored.
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    /// Fit the CLV models on orders up to this date (YYYY-MM-DD, end of day UTC) and compare
    /// their predictions with what happened until --as-of. Writes no CLV traits.
    #[arg(long, value_name = "DATE")]
    calibration_end: Option<String>,
    /// Time unit of the buy-till-you-die models.
    #[arg(long, value_enum, default_value = "week")]
    period: PeriodArg,
    /// Reporting period of base dynamics and cohorts.
    #[arg(long, value_enum, default_value = "month")]
    granularity: GranularityArg,
    /// Number of customer clusters [default: chosen by silhouette among 2..=8].
    #[arg(long, value_name = "K")]
    clusters: Option<usize>,
    /// Print the results as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PeriodArg {
    Day,
    Week,
}

#[derive(Clone, Copy, ValueEnum)]
enum GranularityArg {
    Week,
    Month,
}

pub fn run_command(store: &Store, args: AnalyzeArgs) -> Result<()> {
    let which = match args.what.as_str() {
        "all" => Vec::new(),
        name => vec![Analysis::parse(name).with_context(|| {
            format!("unknown analysis {name:?}: use all, rfm, clv, cohorts, clusters or dynamics")
        })?],
    };
    let as_of_ms = match &args.as_of {
        Some(d) => end_of_day(d, "--as-of")?,
        None => store.now_ms(),
    };
    let mut options = Options::new(as_of_ms);
    options.period = match args.period {
        PeriodArg::Day => Period::DAY,
        PeriodArg::Week => Period::WEEK,
    };
    options.granularity = match args.granularity {
        GranularityArg::Week => Granularity::Week,
        GranularityArg::Month => Granularity::Month,
    };
    options.clusters = args.clusters;
    if let Some(d) = &args.calibration_end {
        let end = end_of_day(d, "--calibration-end")?;
        if end >= as_of_ms {
            bail!("--calibration-end {d} must be before the analysis date (--as-of)");
        }
        options.calibration_end_ms = Some(end);
    }
    let outcome = run(store, &which, &options)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &json_of(&outcome, &which))?;
        writeln!(out)?;
    } else {
        print_summary(&mut out, &outcome)?;
    }
    Ok(())
}

fn end_of_day(raw: &str, flag: &str) -> Result<i64> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .with_context(|| format!("{flag} {raw:?} is not a date like 1997-09-30"))?;
    let end = date
        .and_hms_milli_opt(23, 59, 59, 999)
        .context("no end of day")?;
    Ok(end.and_utc().timestamp_millis())
}

/// With one analysis asked for, its result alone (`analyze clv --json` prints the models
/// keyed `bgnbd`, `mbgnbd`, `pareto`, `gamma_gamma`); otherwise every result by name.
fn json_of(outcome: &Outcome, which: &[Analysis]) -> serde_json::Value {
    let all = serde_json::to_value(outcome).unwrap_or_default();
    match which {
        [one] => all.get(one.as_str()).cloned().unwrap_or_default(),
        _ => all,
    }
}

fn print_summary(out: &mut impl Write, o: &Outcome) -> Result<()> {
    if let Some(rfm) = &o.rfm {
        writeln!(out, "RFM as of {} — {} customers", rfm.as_of, rfm.customers)?;
        writeln!(
            out,
            "  {:<20} {:>9} {:>7} {:>12} {:>9}",
            "segment", "customers", "share", "value", "recency"
        )?;
        for s in rfm.segments.iter().filter(|s| s.customers > 0) {
            writeln!(
                out,
                "  {:<20} {:>9} {:>6.1}% {:>12.2} {:>8.0}d",
                s.label,
                s.customers,
                100.0 * s.customer_share,
                s.total_value,
                s.mean_recency_days.unwrap_or(0.0)
            )?;
        }
    }
    if let Some(clv) = &o.clv {
        writeln!(
            out,
            "\nCLV models fitted to {} ({} customers, {} repeat; period {} days)",
            clv.fitted_to, clv.customers, clv.repeat_customers, clv.period_days
        )?;
        let b = &clv.bgnbd;
        writeln!(
            out,
            "  BG/NBD      r={:.6} alpha={:.6} a={:.6} b={:.6}  LL={:.4} {}",
            b.parameters.r,
            b.parameters.alpha,
            b.parameters.a,
            b.parameters.b,
            b.log_likelihood,
            converged(b.report.converged)
        )?;
        let m = &clv.mbgnbd;
        writeln!(
            out,
            "  MBG/NBD     r={:.6} alpha={:.6} a={:.6} b={:.6}  LL={:.4} {}",
            m.parameters.r,
            m.parameters.alpha,
            m.parameters.a,
            m.parameters.b,
            m.log_likelihood,
            converged(m.report.converged)
        )?;
        let p = &clv.pareto;
        writeln!(
            out,
            "  Pareto/NBD  r={:.6} alpha={:.6} s={:.6} beta={:.6}  LL={:.4} {}",
            p.parameters.r,
            p.parameters.alpha,
            p.parameters.s,
            p.parameters.beta,
            p.log_likelihood,
            converged(p.report.converged)
        )?;
        let g = &clv.gamma_gamma;
        writeln!(
            out,
            "  Gamma-Gamma p={:.6} q={:.6} v={:.6}  LL={:.4} {}",
            g.parameters.p,
            g.parameters.q,
            g.parameters.v,
            g.log_likelihood,
            converged(g.report.converged)
        )?;
        if let (Some(alive), Some(x), Some(total)) = (
            clv.mean_p_alive,
            clv.mean_expected_purchases_90d,
            clv.total_clv_12m,
        ) {
            writeln!(
                out,
                "  mean P(alive) {alive:.3}; mean expected purchases in 90 days {x:.3}; 12-month CLV of the base {total:.2}"
            )?;
        }
        for h in clv.holdout.iter().flatten() {
            writeln!(
                out,
                "\n  holdout, {}: actual {:.0} vs predicted {:.1} repeat purchases",
                h.model, h.actual_total, h.predicted_total
            )?;
            writeln!(
                out,
                "  {:>6} {:>9} {:>8} {:>9}",
                "x", "customers", "actual", "predicted"
            )?;
            for bucket in &h.buckets {
                let label = format!(
                    "{}{}",
                    bucket.calibration_frequency,
                    if bucket.open_ended { "+" } else { "" }
                );
                writeln!(
                    out,
                    "  {:>6} {:>9} {:>8.3} {:>9.3}",
                    label, bucket.customers, bucket.actual_mean, bucket.predicted_mean
                )?;
            }
        }
    }
    if let Some(d) = &o.dynamics {
        writeln!(out, "\nBase dynamics (last periods)")?;
        writeln!(
            out,
            "  {:<9} {:>9} {:>7} {:>7} {:>9} {:>8} {:>12}",
            "period", "customers", "new", "active", "retention", "churn", "revenue"
        )?;
        for p in d.base.periods.iter().rev().take(6).rev() {
            writeln!(
                out,
                "  {:<9} {:>9} {:>7} {:>7} {:>9} {:>8} {:>12.2}",
                p.period.label,
                p.customers_total,
                p.new,
                p.active,
                pct(p.retention_rate),
                pct(p.churn_rate),
                p.revenue
            )?;
        }
    }
    if let Some(c) = &o.cohorts {
        writeln!(out, "\nAcquisition cohorts: {}", c.cohorts.len())?;
    }
    if let Some(c) = &o.clusters {
        writeln!(out, "\nCustomer groups ({} customers)", c.customers)?;
        if let Some(clusters) = c.clustering.clusters() {
            for line in clusters {
                writeln!(out, "  {line}")?;
            }
        }
    }
    writeln!(
        out,
        "\ncomputed traits written to {} profiles",
        o.profiles_updated
    )?;
    let stages: Vec<String> = o
        .timings
        .iter()
        .map(|(s, t)| format!("{s} {t:.2}s"))
        .collect();
    writeln!(out, "time: {}", stages.join(", "))?;
    Ok(())
}

fn converged(ok: bool) -> &'static str {
    if ok { "(converged)" } else { "(NOT converged)" }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.1}%", 100.0 * x))
}
