//! Charts drawn on the server as SVG coordinates: no chart library, no script, and they
//! render the same with JavaScript off. Templates hold the markup; this module only turns
//! numbers into coordinates and labels.

use crate::customers::human_time;

/// Width and height of a sparkline's view box.
const SPARK_W: f64 = 100.0;
const SPARK_H: f64 = 24.0;

/// A tiny trend line.
pub struct Sparkline {
    /// `x,y x,y …` for a `<polyline>`; empty when there is nothing to draw.
    pub points: String,
}

impl Sparkline {
    pub fn new(values: &[f64]) -> Sparkline {
        Sparkline {
            points: polyline(values, SPARK_W, SPARK_H, 2.0),
        }
    }
}

/// `values` scaled into a `width` × `height` box (with `pad` inside), as polyline points.
/// One value draws a flat line across; the scale starts at zero so sizes compare honestly.
fn polyline(values: &[f64], width: f64, height: f64, pad: f64) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let span = if max > 0.0 { max } else { 1.0 };
    let y = |v: f64| pad + (height - 2.0 * pad) * (1.0 - v / span);
    if values.len() == 1 {
        return format!(
            "{pad:.1},{y:.1} {:.1},{y:.1}",
            width - pad,
            y = y(values[0])
        );
    }
    let step = (width - 2.0 * pad) / (values.len() - 1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", pad + step * i as f64, y(v)))
        .collect::<Vec<_>>()
        .join(" ")
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

impl Series {
    /// `(time ms, value)` pairs, oldest first.
    pub fn new(pairs: &[(i64, f64)]) -> Series {
        let values: Vec<f64> = pairs.iter().map(|&(_, v)| v).collect();
        let label = |ms: Option<i64>| {
            ms.and_then(prossimo_model::format_millis)
                .map(|s| human_time(&s))
                .unwrap_or_default()
        };
        Series {
            points: polyline(&values, CHART_W, CHART_H, 4.0),
            max_label: format_number(values.iter().copied().fold(0.0_f64, f64::max)),
            first_label: label(pairs.first().map(|p| p.0)),
            last_label: label(pairs.last().map(|p| p.0)),
            len: pairs.len(),
        }
    }
}

/// Whole numbers without decimals, others with two.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polylines_start_at_zero_and_fill_the_box() {
        assert_eq!(polyline(&[], 100.0, 24.0, 2.0), "");
        assert_eq!(
            polyline(&[0.0, 10.0], 100.0, 24.0, 2.0),
            "2.0,22.0 98.0,2.0"
        );
        assert_eq!(polyline(&[5.0], 100.0, 24.0, 2.0), "2.0,2.0 98.0,2.0");
        assert_eq!(
            polyline(&[0.0, 5.0, 10.0], 100.0, 24.0, 2.0),
            "2.0,22.0 50.0,12.0 98.0,2.0"
        );
    }

    #[test]
    fn series_have_labels_for_their_ends_and_top() {
        let s = Series::new(&[(0, 3.0), (3_600_000, 7.0)]);
        assert_eq!(s.max_label, "7");
        assert_eq!(s.first_label, "1970-01-01 00:00");
        assert_eq!(s.last_label, "1970-01-01 01:00");
        assert_eq!(s.len, 2);
    }
}
