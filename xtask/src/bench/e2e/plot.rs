//! Line charts of the report, as SVG (no font library needed: the text stays text).

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// One line of a chart: its name and its points.
pub struct Series {
    /// The legend's name.
    pub name: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// How an axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// From 0 to a little past the largest value.
    Linear,
    /// Powers of ten, from a little below the smallest value to a little past the largest
    /// (values at or below 0 are left out).
    Log,
}

impl Scale {
    /// How many labels the axis gets over `range`: one per decade on a log axis.
    fn labels(self, range: &std::ops::Range<f64>) -> usize {
        match self {
            Scale::Linear => 10,
            Scale::Log => (range.end - range.start).round() as usize + 1,
        }
    }

    /// Where `v` lies on the axis (`None`: it cannot be shown).
    fn place(self, v: f64) -> Option<f64> {
        match self {
            Scale::Linear => Some(v),
            Scale::Log => (v > 0.0).then(|| v.log10()),
        }
    }

    /// The axis's range for placed values from `lo` to `hi`.
    fn range(self, lo: f64, hi: f64) -> std::ops::Range<f64> {
        match self {
            Scale::Linear if hi > 0.0 => 0.0..hi * 1.08,
            Scale::Linear => 0.0..1.0,
            // Whole decades, so that each label is a power of ten.
            Scale::Log if lo <= hi => lo.floor()..hi.ceil().max(lo.floor() + 1.0),
            Scale::Log => 0.0..1.0,
        }
    }

    /// The label of the placed value `v`.
    fn label(self, v: f64) -> String {
        let v = match self {
            Scale::Linear => v,
            Scale::Log => 10f64.powf(v),
        };
        let whole = (v - v.round()).abs() <= 1e-9 * v.abs().max(1.0);
        if whole || v.abs() >= 10.0 {
            format!("{v:.0}")
        } else if v.abs() >= 1.0 {
            format!("{v:.1}")
        } else {
            let text = format!("{v:.4}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    }
}

/// Draws `series` into an SVG file at `path` with the axes' `scales`.
pub fn chart(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    (x_scale, y_scale): (Scale, Scale),
    series: &[Series],
) -> Result<()> {
    let placed: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&(x, y)| Some((x_scale.place(x)?, y_scale.place(y)?)))
                .collect()
        })
        .collect();
    let bounds = |pick: fn(&(f64, f64)) -> f64| {
        placed
            .iter()
            .flatten()
            .map(pick)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x_lo, x_hi) = bounds(|p| p.0);
    let (y_lo, y_hi) = bounds(|p| p.1);
    let (x_range, y_range) = (x_scale.range(x_lo, x_hi), y_scale.range(y_lo, y_hi));
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone(), y_range.clone())?;
        let x_format = |v: &f64| x_scale.label(*v);
        let y_format = |v: &f64| y_scale.label(*v);
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(x_scale.labels(&x_range))
            .y_labels(y_scale.labels(&y_range))
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .draw()?;
        for (i, (s, points)) in series.iter().zip(&placed).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("drawing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_its_title_and_legend() {
        let dir = std::env::temp_dir().join(format!("eve-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let series = [
            Series {
                name: "eve".into(),
                points: vec![(1.0, 10.0), (2.0, 19.0)],
            },
            Series {
                name: "eve-seq".into(),
                points: vec![(1.0, 10.0), (2.0, 10.5)],
            },
        ];
        let scales = (Scale::Linear, Scale::Linear);
        chart(&path, "throughput", ("threads", "ops/s"), scales, &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in ["throughput", "threads", "eve-seq"] {
            assert!(svg.contains(text), "{text} is in the chart");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_log_axis_labels_powers_of_ten_and_leaves_out_what_it_cannot_place() {
        assert_eq!(Scale::Log.place(1000.0), Some(3.0));
        assert_eq!(Scale::Log.place(0.0), None);
        assert_eq!(Scale::Log.label(2.0), "100");
        assert_eq!(Scale::Log.label(-1.0), "0.1");
        assert_eq!(Scale::Log.label(-2.0), "0.01");
        assert_eq!(Scale::Linear.label(2.5), "2.5");
        assert_eq!(Scale::Linear.label(0.25), "0.25");
        assert_eq!(Scale::Linear.label(0.8), "0.8");
        assert_eq!(Scale::Log.range(0.3, 2.5), 0.0..3.0);
        assert_eq!(Scale::Log.range(2.0, 2.0), 2.0..3.0);

        let dir = std::env::temp_dir().join(format!("eve-plot-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let series = [Series {
            name: "eve".into(),
            points: vec![(0.0, 1.0), (1.0, 10.0), (1000.0, 0.5)],
        }];
        let scales = (Scale::Log, Scale::Log);
        chart(&path, "latency", ("rate", "ms"), scales, &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("1000"), "the x axis reaches 10^3");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
