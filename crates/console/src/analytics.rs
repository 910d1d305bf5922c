//! Analytics: the customer base and the models, as charts drawn from the stored reports of
//! the last analysis run (`prossimo analyze` or the server's analyst), so the page reads a
//! handful of rows whatever the size of the base.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use prossimo_bus::Happened;

use crate::users::Role;
use prossimo_understand::{LAST_RUN, Problem, Reports, StoredAnalysis};
use serde::Deserialize;
use serde_json::Value;

use crate::ConsoleState;
use crate::auth::Signed;
use crate::charts::{BarChart, LineChart};
use crate::customers::{human_millis, human_time, money};
use crate::i18n::{self, Lang, Texts};
use crate::page::{Chrome, PageError, blocking, path_and_query, respond};

/// Periods shown in the per-period charts (the most recent ones).
const RECENT_PERIODS: usize = 24;
/// Cohorts shown in the retention heatmap (the most recent ones).
const RECENT_COHORTS: usize = 12;

#[derive(Debug, Deserialize, Default)]
pub struct AnalyticsQuery {
    lang: Option<String>,
    /// `requested` after an admin asked for a new run.
    run: Option<String>,
}

/// The latest server run, when it failed or could not compute everything.
struct LastRun {
    failed: bool,
    error: String,
    finished_at: String,
    problems: Vec<String>,
}

impl LastRun {
    /// From the stored summary; `None` when the run went through without a problem.
    fn worth_showing(summary: &StoredAnalysis, lang: Lang) -> Option<LastRun> {
        let r = &summary.result;
        let failed = r.get("ok").and_then(Value::as_bool) == Some(false);
        let problems: Vec<String> = array(r, "problems")
            .iter()
            .filter_map(|p| problem_text(p, lang))
            .collect();
        (failed || !problems.is_empty()).then(|| LastRun {
            failed,
            error: r
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            finished_at: human_millis(summary.computed_at),
            problems,
        })
    }
}

/// A stored problem of a run in the reader's language (runs before problems had kinds
/// stored them as English sentences).
fn problem_text(stored: &Value, lang: Lang) -> Option<String> {
    if let Some(sentence) = stored.as_str() {
        return Some(sentence.to_owned());
    }
    let problem: Problem = serde_json::from_value(stored.clone()).ok()?;
    Some(match (lang, &problem) {
        (Lang::En, _) => problem.message().to_owned(),
        (
            Lang::It,
            Problem::OrdersSkipped {
                count,
                profile_id,
                order_id,
                value,
                time,
                ..
            },
        ) => format!(
            "ordini: {count} esclusi da ogni analisi perché il valore o la data non si possono contare \
             (ad esempio cliente {profile_id}, ordine {order_id:?}: valore {value}, data {time})"
        ),
        (Lang::It, Problem::TouchpointsTooEarly { count, .. }) => format!(
            "punti di contatto: {count} eventi datati prima del 1900 esclusi da coorti e dinamiche"
        ),
        (Lang::It, Problem::ClvNotConverged { .. }) => {
            "clv: BG/NBD o Gamma-Gamma non arrivano a convergenza su questi dati; previsioni non aggiornate"
                .to_owned()
        }
        (Lang::It, Problem::AnalysisFailed { analysis, error, .. }) => {
            format!("{analysis}: calcolo non riuscito ({error})")
        }
    })
}

/// One chart with its words; exactly one of `bars`, `lines`, `grid` is drawn, or `missing`
/// says why there is nothing to draw yet.
struct Figure {
    name: &'static str,
    title: &'static str,
    caption: String,
    bars: Option<BarChart>,
    lines: Option<LineChart>,
    grid: Option<Grid>,
    missing: Option<&'static str>,
}

impl Figure {
    fn new(name: &'static str, title: &'static str, caption: String) -> Figure {
        Figure {
            name,
            title,
            caption,
            bars: None,
            lines: None,
            grid: None,
            missing: None,
        }
    }

    fn missing(mut self, why: &'static str) -> Figure {
        self.missing = Some(why);
        self
    }
}

/// A table of shaded cells (retention by cohort, the RFM grid).
struct Grid {
    corner: String,
    columns: Vec<String>,
    rows: Vec<GridRow>,
}

struct GridRow {
    label: String,
    cells: Vec<Cell>,
}

struct Cell {
    value: f64,
    shown: String,
    /// `h0`…`h9`: shade by share of the row's (or grid's) largest value.
    shade: String,
}

fn shade(share: f64) -> String {
    format!("h{}", ((share.clamp(0.0, 1.0) * 9.0).round()) as u8)
}

#[derive(Template)]
#[template(path = "analytics.html")]
struct AnalyticsPage {
    chrome: Chrome,
    computed_at: String,
    headline: Vec<(&'static str, String)>,
    figures: Vec<Figure>,
    last_run: Option<LastRun>,
    /// Admins may ask for a new run.
    can_run: bool,
    run_requested: bool,
}

pub async fn page(
    State(state): State<ConsoleState>,
    Query(query): Query<AnalyticsQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let store = state.store.clone();
    let reports = blocking(lang, move || {
        let reports = Reports::of(&store)?;
        let mut out = Vec::new();
        for name in [
            "dynamics",
            "cohorts",
            "rfm",
            "clv",
            "clv_evaluation",
            LAST_RUN,
        ] {
            out.push(reports.get(name)?);
        }
        Ok(out)
    })
    .await?;
    let [dynamics, cohorts, rfm, clv, evaluation, last_run]: [Option<StoredAnalysis>; 6] =
        reports.try_into().map_err(|_| PageError::internal(lang))?;
    let last_run = last_run
        .as_ref()
        .and_then(|run| LastRun::worth_showing(run, lang));
    let t = lang.texts();
    let currency = state.store.money().reporting().to_owned();
    let result = |a: &Option<StoredAnalysis>| a.as_ref().map(|a| a.result.clone());
    let (dynamics, cohorts, rfm, clv, evaluation) = (
        result(&dynamics),
        result(&cohorts),
        result(&rfm),
        result(&clv),
        result(&evaluation),
    );
    let computed_at = [&rfm, &clv]
        .iter()
        .find_map(|r| {
            r.as_ref()?
                .get("as_of")
                .or(r.as_ref()?.get("fitted_to"))?
                .as_str()
                .map(human_time)
        })
        .unwrap_or_default();
    // Reports are as of their run; periods ending after it were still in progress.
    let as_of_ms = rfm
        .as_ref()
        .and_then(|r| r.get("as_of")?.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or_else(|| state.store.now_ms(), |t| t.timestamp_millis());
    let figures = vec![
        growth(t, lang, dynamics.as_ref(), as_of_ms),
        new_returning(t, lang, dynamics.as_ref(), as_of_ms),
        retention(t, lang, cohorts.as_ref()),
        rfm_figure(t, lang, rfm.as_ref()),
        clv_distribution(t, lang, clv.as_ref()),
        p_alive_by_recency(t, lang, clv.as_ref()),
        churn_loyalty(t, lang, dynamics.as_ref(), as_of_ms),
        channels(t, lang, dynamics.as_ref(), as_of_ms),
        holdout(t, lang, evaluation.as_ref()),
    ];
    let page = AnalyticsPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            t.nav_analytics,
            "analytics",
            &path_and_query(&uri),
        ),
        computed_at,
        headline: headline(t, lang, &currency, rfm.as_ref(), clv.as_ref()),
        figures,
        last_run,
        can_run: signed.role().allows(Role::Admin),
        run_requested: query.run.as_deref() == Some("requested"),
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

#[derive(Debug, Deserialize)]
pub struct RunForm {
    csrf: String,
}

/// `POST /analytics/run` (admins): asks the analyst for a new run; one already asked for
/// or under way answers for it.
pub async fn run_again(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<RunForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    if !signed.role().allows(Role::Admin) {
        return Err(PageError::forbidden(lang));
    }
    if !signed.csrf_ok(&form.csrf) {
        return Err(PageError::forbidden(lang));
    }
    state.bus.publish(Happened::AnalysisRequested);
    tracing::info!(user = %signed.email(), "analysis run asked for from the console");
    Ok(Redirect::to("/analytics?run=requested").into_response())
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The last `n` of `items`.
fn recent<T>(items: &[T], n: usize) -> &[T] {
    &items[items.len().saturating_sub(n)..]
}

fn period_label(p: &Value) -> String {
    p.get("period")
        .and_then(|p| p.get("label"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// A period's label, marked when the period was still in progress at the run (its
/// figures are partial: a month three days old is not a collapse).
fn period_label_as_of(p: &Value, t: &Texts, as_of_ms: i64) -> String {
    let label = period_label(p);
    let in_progress = p
        .get("period")
        .and_then(|p| p.get("end_ms"))
        .and_then(Value::as_i64)
        .is_some_and(|end| end > as_of_ms);
    if in_progress {
        format!("{label} ({})", t.period_in_progress)
    } else {
        label
    }
}

fn headline(
    t: &Texts,
    lang: Lang,
    currency: &str,
    rfm: Option<&Value>,
    clv: Option<&Value>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(n) = rfm.and_then(|r| number(r, "customers")) {
        out.push((t.buyers, lang.number(n)));
    }
    if let Some(clv) = clv {
        if let Some(n) = number(clv, "repeat_customers") {
            out.push((t.repeat_buyers, lang.number(n)));
        }
        if let Some(p) = number(clv, "mean_p_alive") {
            out.push((t.mean_p_alive, lang.percent(p)));
        }
        if let Some(v) = number(clv, "total_clv_12m") {
            out.push((t.total_clv, money(lang, v, currency)));
        }
    }
    out
}

fn growth(t: &Texts, lang: Lang, dynamics: Option<&Value>, as_of_ms: i64) -> Figure {
    let figure = Figure::new("growth", t.chart_growth, t.chart_growth_caption.to_owned());
    let Some(periods) = dynamics
        .and_then(|d| d.get("base"))
        .map(|b| array(b, "periods"))
    else {
        return figure.missing(t.not_computed);
    };
    let periods = recent(periods, RECENT_PERIODS);
    let labels: Vec<String> = periods
        .iter()
        .map(|p| period_label_as_of(p, t, as_of_ms))
        .collect();
    let series = |key: &str| periods.iter().map(|p| number(p, key)).collect::<Vec<_>>();
    Figure {
        lines: Some(LineChart::new(
            &labels,
            &[
                (t.customers_total.to_owned(), series("customers_total")),
                (t.active.to_owned(), series("active")),
            ],
            &|v| lang.number(v),
        )),
        ..figure
    }
}

fn new_returning(t: &Texts, lang: Lang, dynamics: Option<&Value>, as_of_ms: i64) -> Figure {
    let figure = Figure::new(
        "new-returning",
        t.chart_new_returning,
        t.chart_new_returning_caption.to_owned(),
    );
    let Some(periods) = dynamics
        .and_then(|d| d.get("base"))
        .map(|b| array(b, "periods"))
    else {
        return figure.missing(t.not_computed);
    };
    let periods = recent(periods, 12);
    let labels: Vec<String> = periods
        .iter()
        .map(|p| period_label_as_of(p, t, as_of_ms))
        .collect();
    let new: Vec<f64> = periods
        .iter()
        .map(|p| number(p, "new").unwrap_or(0.0))
        .collect();
    let returning: Vec<f64> = periods
        .iter()
        .zip(&new)
        .map(|(p, n)| (number(p, "active").unwrap_or(0.0) - n).max(0.0))
        .collect();
    Figure {
        bars: Some(BarChart::new(
            &labels,
            &[
                (t.new_customers.to_owned(), new),
                (t.returning_customers.to_owned(), returning),
            ],
            &|v| lang.number(v),
        )),
        ..figure
    }
}

fn retention(t: &Texts, lang: Lang, cohorts: Option<&Value>) -> Figure {
    let figure = Figure::new(
        "cohorts",
        t.chart_cohorts,
        t.chart_cohorts_caption.to_owned(),
    );
    let Some(cohorts) = cohorts
        .map(|c| array(c, "cohorts"))
        .filter(|c| !c.is_empty())
    else {
        return figure.missing(t.not_computed);
    };
    let cohorts = recent(cohorts, RECENT_COHORTS);
    let width = cohorts
        .iter()
        .map(|c| array(c, "share").len())
        .max()
        .unwrap_or(0)
        .min(RECENT_COHORTS);
    let rows = cohorts
        .iter()
        .map(|c| {
            let label = c
                .get("cohort")
                .and_then(|p| p.get("label"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let size = number(c, "size").unwrap_or(0.0);
            GridRow {
                label: format!("{label} ({})", lang.number(size)),
                cells: array(c, "share")
                    .iter()
                    .take(width)
                    .map(|s| {
                        let share = s.as_f64().unwrap_or(0.0);
                        Cell {
                            value: share,
                            shown: lang.percent(share),
                            shade: shade(share),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Figure {
        grid: Some(Grid {
            corner: t.cohort.to_owned(),
            columns: (0..width).map(|i| format!("+{i}")).collect(),
            rows,
        }),
        ..figure
    }
}

fn rfm_figure(t: &Texts, lang: Lang, rfm: Option<&Value>) -> Figure {
    let figure = Figure::new("rfm", t.chart_rfm, t.chart_rfm_caption.to_owned());
    let Some(rfm) = rfm else {
        return figure.missing(t.not_computed);
    };
    let segments = array(rfm, "segments");
    let labels: Vec<String> = segments
        .iter()
        .map(|s| {
            let code = s.get("segment").and_then(Value::as_str).unwrap_or("");
            i18n::rfm_segment(lang, code).map_or(code.to_owned(), |(label, _)| label.to_owned())
        })
        .collect();
    let shares = |key: &str| {
        segments
            .iter()
            .map(|s| number(s, key).unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    let grid = rfm.get("rf_grid").and_then(Value::as_array).map(|rows| {
        let counts: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                r.as_array()
                    .map_or(Vec::new(), |c| c.iter().filter_map(Value::as_f64).collect())
            })
            .collect();
        let max = counts
            .iter()
            .flatten()
            .copied()
            .fold(0.0_f64, f64::max)
            .max(1.0);
        Grid {
            corner: t.recency_frequency.to_owned(),
            columns: (1..=5).map(|f| format!("F{f}")).collect(),
            // Most recent first, as the grid is usually read.
            rows: counts
                .iter()
                .enumerate()
                .rev()
                .map(|(r, row)| GridRow {
                    label: format!("R{}", r + 1),
                    cells: row
                        .iter()
                        .map(|&n| Cell {
                            value: n,
                            shown: lang.number(n),
                            shade: shade(n / max),
                        })
                        .collect(),
                })
                .collect(),
        }
    });
    Figure {
        bars: Some(BarChart::new(
            &labels,
            &[
                (t.share_of_customers.to_owned(), shares("customer_share")),
                (t.share_of_value.to_owned(), shares("value_share")),
            ],
            &|v| lang.percent(v),
        )),
        grid,
        ..figure
    }
}

/// `from–to` for each band, `from+` for the last, open one.
fn band_labels(lang: Lang, bands: &[Value], from: &str, to: &str) -> Vec<String> {
    bands
        .iter()
        .map(|b| {
            let low = lang.number(number(b, from).unwrap_or(0.0));
            match number(b, to) {
                Some(high) => format!("{low}–{}", lang.number(high)),
                None => format!("{low}+"),
            }
        })
        .collect()
}

fn clv_distribution(t: &Texts, lang: Lang, clv: Option<&Value>) -> Figure {
    let figure = Figure::new(
        "clv-distribution",
        t.chart_clv,
        t.chart_clv_caption.to_owned(),
    );
    let Some(bands) = clv
        .and_then(|c| c.get("spread"))
        .map(|s| array(s, "clv_bands"))
    else {
        return figure.missing(t.not_computed);
    };
    let labels = band_labels(lang, bands, "from", "to");
    let counts = bands
        .iter()
        .map(|b| number(b, "customers").unwrap_or(0.0))
        .collect();
    Figure {
        bars: Some(BarChart::new(
            &labels,
            &[(t.customers_total.to_owned(), counts)],
            &|v| lang.number(v),
        )),
        ..figure
    }
}

fn p_alive_by_recency(t: &Texts, lang: Lang, clv: Option<&Value>) -> Figure {
    let figure = Figure::new(
        "p-alive-recency",
        t.chart_p_alive,
        t.chart_p_alive_caption.to_owned(),
    );
    let Some(bands) = clv
        .and_then(|c| c.get("spread"))
        .map(|s| array(s, "p_alive_by_recency"))
    else {
        return figure.missing(t.not_computed);
    };
    let labels = band_labels(lang, bands, "from_days", "to_days");
    let means = bands
        .iter()
        .map(|b| number(b, "mean_p_alive").unwrap_or(f64::NAN))
        .collect();
    Figure {
        bars: Some(BarChart::new(
            &labels,
            &[(t.mean_p_alive.to_owned(), means)],
            &|v| lang.percent(v),
        )),
        ..figure
    }
}

fn churn_loyalty(t: &Texts, lang: Lang, dynamics: Option<&Value>, as_of_ms: i64) -> Figure {
    let figure = Figure::new(
        "churn-loyalty",
        t.chart_churn,
        t.chart_churn_caption.to_owned(),
    );
    let Some(segments) = dynamics
        .and_then(|d| d.get("base"))
        .map(|b| array(b, "segments"))
    else {
        return figure.missing(t.not_computed);
    };
    let mut labels = Vec::new();
    let (mut churn, mut loyalty) = (Vec::new(), Vec::new());
    let mut months = std::collections::BTreeSet::new();
    // In the order of the RFM chart (best customers first), not the report's.
    let mut segments: Vec<&Value> = segments.iter().collect();
    segments.sort_by_key(|s| {
        let code = s.get("segment").and_then(Value::as_str).unwrap_or("");
        i18n::RFM_ORDER
            .iter()
            .position(|c| *c == code)
            .unwrap_or(usize::MAX)
    });
    for s in segments {
        // The latest complete period in which the segment had customers to lose or keep
        // (the month in progress would count everyone who has not bought yet as lost).
        let complete = |p: &&Value| {
            p.get("period")
                .and_then(|p| p.get("end_ms"))
                .and_then(Value::as_i64)
                .is_none_or(|end| end <= as_of_ms)
        };
        let Some(period) = array(s, "periods")
            .iter()
            .rev()
            .filter(complete)
            .find(|p| number(p, "churn_rate").is_some())
        else {
            continue;
        };
        let code = s.get("segment").and_then(Value::as_str).unwrap_or("");
        months.insert(period_label(period));
        labels.push(
            i18n::rfm_segment(lang, code).map_or(code.to_owned(), |(label, _)| label.to_owned()),
        );
        churn.push(number(period, "churn_rate").unwrap_or(f64::NAN));
        loyalty.push(number(period, "repeat_rate").unwrap_or(f64::NAN));
    }
    if labels.is_empty() {
        return figure.missing(t.not_computed);
    }
    let months: Vec<String> = months.into_iter().collect();
    Figure {
        caption: format!("{} ({})", figure.caption, months.join(", ")),
        bars: Some(BarChart::new(
            &labels,
            &[
                (t.churn_rate.to_owned(), churn),
                (t.loyalty_rate.to_owned(), loyalty),
            ],
            &|v| lang.percent(v),
        )),
        ..figure
    }
}

fn channels(t: &Texts, lang: Lang, dynamics: Option<&Value>, as_of_ms: i64) -> Figure {
    let figure = Figure::new(
        "channels",
        t.chart_channels,
        t.chart_channels_caption.to_owned(),
    );
    let Some(periods) = dynamics
        .map(|d| array(d, "channels"))
        .filter(|p| !p.is_empty())
    else {
        return figure.missing(t.not_computed);
    };
    let periods = recent(periods, RECENT_PERIODS);
    let labels: Vec<String> = periods
        .iter()
        .map(|p| period_label_as_of(p, t, as_of_ms))
        .collect();
    let series = |key: &str| periods.iter().map(|p| number(p, key)).collect::<Vec<_>>();
    Figure {
        lines: Some(LineChart::new(
            &labels,
            &[
                (
                    t.offline_interactions.to_owned(),
                    series("offline_interaction_share"),
                ),
                (
                    t.offline_revenue.to_owned(),
                    series("offline_revenue_share"),
                ),
            ],
            &|v| lang.percent(v),
        )),
        ..figure
    }
}

fn holdout(t: &Texts, lang: Lang, evaluation: Option<&Value>) -> Figure {
    let figure = Figure::new(
        "holdout",
        t.chart_holdout,
        t.chart_holdout_caption.to_owned(),
    );
    let Some(model) = evaluation.map(|e| array(e, "holdout")).and_then(|models| {
        models
            .iter()
            .find(|m| m.get("model").and_then(Value::as_str) == Some("bgnbd"))
            .or(models.first())
    }) else {
        return figure.missing(t.holdout_missing);
    };
    let buckets = array(model, "buckets");
    let labels: Vec<String> = buckets
        .iter()
        .map(|b| {
            let n = number(b, "calibration_frequency").unwrap_or(0.0);
            let open = b
                .get("open_ended")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            format!("{}{}", lang.number(n), if open { "+" } else { "" })
        })
        .collect();
    let series = |key: &str| {
        buckets
            .iter()
            .map(|b| number(b, key).unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    let caption = match (
        number(model, "actual_total"),
        number(model, "predicted_total"),
    ) {
        (Some(a), Some(p)) => format!(
            "{} {}: {} {} · {} {}",
            t.chart_holdout_caption,
            t.totals,
            t.actual,
            lang.number(a.round()),
            t.predicted,
            lang.number(p.round())
        ),
        _ => t.chart_holdout_caption.to_owned(),
    };
    Figure {
        caption,
        bars: Some(BarChart::new(
            &labels,
            &[
                (t.actual.to_owned(), series("actual_mean")),
                (t.predicted.to_owned(), series("predicted_mean")),
            ],
            &|v| lang.fixed(v, 2),
        )),
        ..figure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn churn_and_loyalty_use_each_segments_latest_period_with_rates() {
        let dynamics = json!({"base": {"segments": [
            {"segment": "champions", "periods": [
                {"period": {"end_ms": 500}, "churn_rate": 0.2, "repeat_rate": 0.9},
                {"period": {"end_ms": 900}, "churn_rate": null, "repeat_rate": null},
                {"period": {"end_ms": 2_000}, "churn_rate": 0.99, "repeat_rate": 0.1}
            ]},
            {"segment": "lost", "periods": [{"churn_rate": null}]}
        ]}});
        let figure = churn_loyalty(&i18n::EN, Lang::En, Some(&dynamics), 1_000);
        let bars = figure.bars.unwrap();
        let values: Vec<f64> = bars.bars.iter().map(|b| b.value).collect();
        assert_eq!(
            values,
            vec![0.2, 0.9],
            "champions' latest complete period with rates; lost has no rates"
        );
        assert_eq!(bars.ticks[0].text, "Champions");
    }

    #[test]
    fn a_missing_report_says_so_instead_of_drawing() {
        let figure = holdout(&i18n::EN, Lang::En, None);
        assert!(figure.bars.is_none());
        assert_eq!(figure.missing, Some(i18n::EN.holdout_missing));
        assert_eq!(shade(0.0), "h0");
        assert_eq!(shade(1.0), "h9");
    }

    #[test]
    fn a_period_still_running_at_the_run_is_marked() {
        let month =
            serde_json::json!({"period": {"label": "2026-12", "start_ms": 100, "end_ms": 200}});
        assert_eq!(
            period_label_as_of(&month, &i18n::EN, 150),
            "2026-12 (so far)"
        );
        assert_eq!(
            period_label_as_of(&month, &i18n::IT, 150),
            "2026-12 (in corso)"
        );
        assert_eq!(period_label_as_of(&month, &i18n::EN, 200), "2026-12");
    }
}
