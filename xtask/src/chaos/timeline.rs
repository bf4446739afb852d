//! The chaos run's timeline as SVG: replies per second above, the p99 latency of each second's
//! replies below, the fault windows shaded in both and named above.

use super::schedule::Window;
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draws `per_second` (`(replies, p99 ms)` for each second of the run) and `windows` into an
/// SVG file at `path`.
pub fn draw(path: &Path, title: &str, per_second: &[(u64, f64)], windows: &[Window]) -> Result<()> {
    let seconds = per_second.len().max(1) as f64;
    let ops_max = per_second.iter().map(|p| p.0).max().unwrap_or(0).max(1) as f64 * 1.1;
    let latency_max = per_second
        .iter()
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let root = SVGBackend::new(path, (1200, 700)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 20))?;
        let (top, bottom) = root.split_vertically(330);
        let shade = RGBColor(255, 140, 0).mix(0.18);
        let mut ops = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..seconds, 0.0..ops_max)?;
        ops.configure_mesh()
            .x_desc("seconds")
            .y_desc("replies/s")
            .draw()?;
        ops.draw_series(windows.iter().map(|w| {
            let span = [(w.start.as_secs_f64(), 0.0), (w.end.as_secs_f64(), ops_max)];
            Rectangle::new(span, shade.filled())
        }))?;
        ops.draw_series(windows.iter().map(|w| {
            Text::new(
                w.fault.kind().to_owned(),
                (w.start.as_secs_f64(), ops_max * 0.97),
                ("sans-serif", 12),
            )
        }))?;
        ops.draw_series(LineSeries::new(
            per_second
                .iter()
                .enumerate()
                .map(|(s, p)| (s as f64 + 0.5, p.0 as f64)),
            BLUE.stroke_width(2),
        ))?;
        let mut latency = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..seconds, -1.0..latency_max)?;
        let power = |v: &f64| {
            let ms = 10f64.powf(*v);
            if ms >= 1.0 {
                format!("{ms:.0}")
            } else {
                format!("{ms:.1}")
            }
        };
        latency
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("p99 latency of the second's replies (ms)")
            .y_labels((latency_max + 2.0) as usize)
            .y_label_formatter(&power)
            .draw()?;
        latency.draw_series(windows.iter().map(|w| {
            let span = [
                (w.start.as_secs_f64(), -1.0),
                (w.end.as_secs_f64(), latency_max),
            ];
            Rectangle::new(span, shade.filled())
        }))?;
        latency.draw_series(LineSeries::new(
            per_second
                .iter()
                .enumerate()
                .filter(|(_, p)| p.1 > 0.0)
                .map(|(s, p)| (s as f64 + 0.5, p.1.log10().max(-1.0))),
            RED.stroke_width(2),
        ))?;
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
    use crate::chaos::schedule::Fault;
    use std::time::Duration;

    #[test]
    fn the_timeline_shades_and_names_each_fault() {
        let dir = std::env::temp_dir().join(format!("eve-timeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("timeline.svg");
        let per_second: Vec<(u64, f64)> = (0..30)
            .map(|s| {
                if (10..15).contains(&s) {
                    (0, 0.0)
                } else {
                    (900, 4.5)
                }
            })
            .collect();
        let windows = [Window {
            start: Duration::from_secs(10),
            end: Duration::from_secs(15),
            fault: Fault::Pause { node: 1 },
        }];
        draw(&path, "chaos seed 1", &per_second, &windows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["chaos seed 1", "pause", "replies/s"] {
            assert!(svg.contains(text), "{text}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
