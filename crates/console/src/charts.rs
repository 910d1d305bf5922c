//! Charts drawn on the server as SVG coordinates: no chart library, no script, and they
//! render the same with JavaScript off. Templates hold the markup; this module only turns
//! numbers into coordinates and labels.

use crate::customers::human_millis;

/// Width and height of a sparkline's view box.
const SPARK_W: f64 = 100.0;
const SPARK_H: f64 = 24.0;

/// A tiny trend line.
pub struct Sparkline {
    /// `x,y x,y …` for a `<polyline>`; empty when there is nothing to draw.
    pub points: String,
}

/// Width and height of a line chart's plot area (labels sit around it).
pub const CHART_W: f64 = 600.0;
pub const CHART_H: f64 = 160.0;

/// A line over time with its axis labels.
pub struct Series {
    pub points: String,
    pub max_label: String,
    pub first_label: String,
    pub last_label: String,
    /// How many points, for the text alternative.
    pub len: usize,
}

/// Points of a step line for a value that holds until it changes: `(time ms, value)`
/// pairs, oldest first, over `[from_ms, to_ms]` in a `width` × `height` box (with `pad`
/// inside), placed by time; the value in force at `from_ms` is the last pair before it.
/// Returns the points, how many values are shown, and the largest.
fn step_points(
    pairs: &[(i64, f64)],
    (from_ms, to_ms): (i64, i64),
    (width, height, pad): (f64, f64, f64),
) -> (String, usize, f64) {
    let start = pairs.iter().rposition(|&(t, _)| t <= from_ms);
    let shown: Vec<(i64, f64)> = match start {
        Some(i) => std::iter::once((from_ms, pairs[i].1))
            .chain(pairs[i + 1..].iter().copied())
            .collect(),
        None => pairs
            .iter()
            .copied()
            .filter(|&(t, _)| t >= from_ms)
            .collect(),
    };
    let max = shown.iter().map(|&(_, v)| v).fold(0.0_f64, f64::max);
    let span_y = if max > 0.0 { max } else { 1.0 };
    let span_x = (to_ms - from_ms).max(1) as f64;
    let x = |t: i64| pad + (width - 2.0 * pad) * ((t - from_ms) as f64 / span_x).clamp(0.0, 1.0);
    let y = |v: f64| pad + (height - 2.0 * pad) * (1.0 - v / span_y);
    let mut points = Vec::new();
    for (i, &(t, v)) in shown.iter().enumerate() {
        if i > 0 {
            points.push(format!("{:.1},{:.1}", x(t), y(shown[i - 1].1)));
        }
        points.push(format!("{:.1},{:.1}", x(t), y(v)));
    }
    if let Some(&(_, last)) = shown.last() {
        points.push(format!("{:.1},{:.1}", x(to_ms), y(last)));
    }
    (points.join(" "), shown.len(), max)
}

impl Sparkline {
    /// The trend of a value that holds until it changes, over `[from_ms, to_ms]`.
    pub fn steps(pairs: &[(i64, f64)], from_ms: i64, to_ms: i64) -> Sparkline {
        Sparkline {
            points: step_points(pairs, (from_ms, to_ms), (SPARK_W, SPARK_H, 2.0)).0,
        }
    }
}

impl Series {
    /// A value that holds until it changes (an audience's size), as steps over
    /// `[from_ms, to_ms]`, placed by time.
    pub fn steps(
        pairs: &[(i64, f64)],
        from_ms: i64,
        to_ms: i64,
        show: &dyn Fn(f64) -> String,
    ) -> Series {
        let (points, len, max) = step_points(pairs, (from_ms, to_ms), (CHART_W, CHART_H, 4.0));
        Series {
            points,
            max_label: show(max),
            first_label: human_millis(from_ms),
            last_label: human_millis(to_ms),
            len,
        }
    }
}

/// One bar, in view-box coordinates.
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// The value as shown (and in `data-value`, as a plain number).
    pub value: f64,
    pub shown: String,
    pub label: String,
    /// `s0`, `s1`, …: which series, for colour and legend.
    pub class: &'static str,
}

/// A category label under the plot.
pub struct Tick {
    pub x: f64,
    pub text: String,
    /// `start`, `middle` or `end`: the first and last labels stay inside the plot.
    pub anchor: &'static str,
    /// Slanted labels, when every category of a crowded chart is named.
    pub slanted: bool,
}

/// A series name and its colour class, for the legend.
pub struct Legend {
    pub class: &'static str,
    pub text: String,
}

const SERIES_CLASSES: [&str; 4] = ["s0", "s1", "s2", "s3"];
/// Category labels shown flat at most, so they never overlap.
const MAX_TICKS: usize = 6;
/// Categories named one by one (slanted) at most.
const MAX_NAMED: usize = 12;

/// Vertical bars per category, one per series side by side.
pub struct BarChart {
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub legend: Vec<Legend>,
    pub max_label: String,
}

impl BarChart {
    /// `series`: (name, one value per category). Missing values (NaN) draw no bar.
    pub fn new(
        categories: &[String],
        series: &[(String, Vec<f64>)],
        show: &dyn Fn(f64) -> String,
    ) -> BarChart {
        let max = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        let span = if max > 0.0 { max } else { 1.0 };
        let slot = CHART_W / categories.len().max(1) as f64;
        let group = slot * 0.8;
        let width = group / series.len().max(1) as f64;
        let mut bars = Vec::new();
        for (c, label) in categories.iter().enumerate() {
            for (k, (name, values)) in series.iter().enumerate() {
                let Some(&value) = values.get(c).filter(|v| v.is_finite()) else {
                    continue;
                };
                let height = CHART_H * value.max(0.0) / span;
                let label = if series.len() > 1 {
                    format!("{label} · {name}")
                } else {
                    label.clone()
                };
                bars.push(Bar {
                    x: slot * c as f64 + slot * 0.1 + width * k as f64,
                    y: CHART_H - height,
                    width: (width - 1.0).max(1.0),
                    height,
                    value,
                    shown: show(value),
                    label,
                    class: SERIES_CLASSES[k % SERIES_CLASSES.len()],
                });
            }
        }
        BarChart {
            bars,
            ticks: ticks(categories, |c| slot * c as f64 + slot / 2.0),
            legend: legend(series.iter().map(|(name, _)| name.as_str())),
            max_label: show(max),
        }
    }
}

/// A point of a line, for its marker and tooltip.
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub value: f64,
    pub shown: String,
    pub label: String,
}

pub struct Line {
    pub name: String,
    /// One polyline's points per run of values without a gap.
    pub runs: Vec<String>,
    pub markers: Vec<Point>,
    pub class: &'static str,
}

/// Lines over the same categories (periods), each a series.
pub struct LineChart {
    pub lines: Vec<Line>,
    pub ticks: Vec<Tick>,
    pub legend: Vec<Legend>,
    pub max_label: String,
}

impl LineChart {
    /// `series`: (name, one value per category; `None` is a gap, not a zero).
    pub fn new(
        categories: &[String],
        series: &[(String, Vec<Option<f64>>)],
        show: &dyn Fn(f64) -> String,
    ) -> LineChart {
        let max = series
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        let span = if max > 0.0 { max } else { 1.0 };
        let step = CHART_W / categories.len().saturating_sub(1).max(1) as f64;
        let lines = series
            .iter()
            .enumerate()
            .map(|(k, (name, values))| {
                let mut markers = Vec::new();
                // Consecutive points form one run; a missing value breaks the line.
                let mut runs: Vec<Vec<String>> = vec![Vec::new()];
                for (c, v) in values.iter().enumerate() {
                    let Some(value) = v.filter(|v| v.is_finite()) else {
                        if runs.last().is_some_and(|r| !r.is_empty()) {
                            runs.push(Vec::new());
                        }
                        continue;
                    };
                    let point = Point {
                        x: step * c as f64,
                        y: CHART_H * (1.0 - value.max(0.0) / span),
                        value,
                        shown: show(value),
                        label: categories.get(c).cloned().unwrap_or_default(),
                    };
                    if let Some(run) = runs.last_mut() {
                        run.push(format!("{:.1},{:.1}", point.x, point.y));
                    }
                    markers.push(point);
                }
                Line {
                    name: name.clone(),
                    runs: runs
                        .into_iter()
                        .filter(|r| !r.is_empty())
                        .map(|r| r.join(" "))
                        .collect(),
                    markers,
                    class: SERIES_CLASSES[k % SERIES_CLASSES.len()],
                }
            })
            .collect();
        LineChart {
            lines,
            ticks: ticks(categories, |c| step * c as f64),
            legend: legend(series.iter().map(|(name, _)| name.as_str())),
            max_label: show(max),
        }
    }
}

fn ticks(categories: &[String], x: impl Fn(usize) -> f64) -> Vec<Tick> {
    let n = categories.len();
    // Up to MAX_NAMED categories (segments, bands) are all named, slanted when crowded;
    // longer runs (months) show every k-th label flat.
    let (every, slanted) = if n <= MAX_TICKS {
        (1, false)
    } else if n <= MAX_NAMED {
        (1, true)
    } else {
        (n.div_ceil(MAX_TICKS), false)
    };
    categories
        .iter()
        .enumerate()
        // The last label always shows; a regular one too close before it is dropped.
        .filter(|(c, _)| *c + 1 == n || (c % every == 0 && n - 1 - c >= every))
        .map(|(c, text)| Tick {
            x: x(c),
            text: text.clone(),
            anchor: if slanted {
                "end"
            } else if c == 0 && n > 1 && x(0) < 1.0 {
                "start"
            } else if c + 1 == n && n > 1 && x(c) > CHART_W - 1.0 {
                "end"
            } else {
                "middle"
            },
            slanted,
        })
        .collect()
}

fn legend<'a>(names: impl Iterator<Item = &'a str>) -> Vec<Legend> {
    names
        .enumerate()
        .map(|(k, text)| Legend {
            class: SERIES_CLASSES[k % SERIES_CLASSES.len()],
            text: text.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn bars_scale_to_the_largest_value_and_skip_missing_ones() {
        let chart = BarChart::new(
            &["a".into(), "b".into()],
            &[
                ("x".into(), vec![2.0, 4.0]),
                ("y".into(), vec![f64::NAN, 1.0]),
            ],
            &|v| Lang::En.number(v),
        );
        assert_eq!(chart.bars.len(), 3, "NaN draws nothing");
        let tallest = chart.bars.iter().find(|b| b.value == 4.0).unwrap();
        assert_eq!((tallest.y, tallest.height), (0.0, CHART_H));
        assert_eq!(chart.bars[0].height, CHART_H / 2.0);
        assert_eq!(chart.max_label, "4");
        assert_eq!(chart.legend.len(), 2);
        assert_eq!(chart.bars[1].label, "b · x");
    }

    #[test]
    fn lines_leave_gaps_and_ticks_never_crowd() {
        let categories: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        let values: Vec<Option<f64>> = (0..25).map(|i| (i != 3).then_some(i as f64)).collect();
        let chart = LineChart::new(&categories, &[("n".into(), values)], &|v| {
            Lang::En.number(v)
        });
        assert_eq!(chart.lines[0].markers.len(), 24);
        assert_eq!(
            chart.lines[0].runs.len(),
            2,
            "the missing month breaks the line"
        );
        assert!(chart.ticks.len() <= MAX_TICKS + 1);
        let last = chart.ticks.last().unwrap();
        assert_eq!((last.text.as_str(), last.anchor), ("m24", "end"));
        assert_eq!(chart.ticks[0].anchor, "start");
        let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
        let named = BarChart::new(&eleven, &[("n".into(), vec![1.0; 11])], &|v| {
            Lang::En.number(v)
        });
        assert_eq!(named.ticks.len(), 11, "every segment is named");
        assert!(named.ticks.iter().all(|t| t.slanted));
        assert_eq!(Lang::It.percent(0.456), "46%");
    }

    #[test]
    fn steps_hold_each_value_until_it_changes_and_are_placed_by_time() {
        let hour = 3_600_000;
        // Sizes written at hours 0, 1 and 9; the chart shows hours 2 to 10.
        let s = Series::steps(
            &[(0, 3.0), (hour, 7.0), (9 * hour, 5.0)],
            2 * hour,
            10 * hour,
            &|v| Lang::En.number(v),
        );
        assert_eq!(
            s.len, 2,
            "the size in force at the start, then the change at hour 9"
        );
        assert_eq!(s.max_label, "7");
        assert_eq!(s.first_label, "1970-01-01 02:00");
        assert_eq!(s.last_label, "1970-01-01 10:00");
        // From x=4 at the top (7), a step at 7/8 of the width down to 5, on to the end.
        assert_eq!(s.points, "4.0,4.0 522.0,4.0 522.0,47.4 596.0,47.4");
        assert_eq!(
            Series::steps(&[], 0, hour, &|v| Lang::En.number(v)).points,
            ""
        );
    }
}
