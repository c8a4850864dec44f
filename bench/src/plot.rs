//! `--plot FILE.svg`: latency over the run, one point per second of send time (p50,
//! p99 and max of that second, on a log scale), with the whole run's p50 and p99 as
//! dashed lines; below it, on the same seconds, what the run counts as done
//! (codes, requests) and the errors, per second in which they happened.
//! SVG only, and plotters sizes text by its own estimate, so no font library is needed.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;

use crate::report::Report;

/// The bottom of the log-scale latency axis (10 µs); lower values sit on it.
const FLOOR_MS: f64 = 0.01;

pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let per_second = &report.latency.per_second;
    let ms = |us: u64| us as f64 / 1000.0;
    let series = |q: f64| -> Vec<(f64, f64)> {
        per_second
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(s, h)| (s as f64 + 0.5, ms(h.value_at_quantile(q)).max(FLOOR_MS)))
            .collect()
    };
    let (p50, p99, max) = (series(0.5), series(0.99), series(1.0));
    let total = &report.latency.total;
    let (all50, all99) = if total.is_empty() {
        (0.0, 0.0)
    } else {
        (
            ms(total.value_at_quantile(0.5)),
            ms(total.value_at_quantile(0.99)),
        )
    };
    let seconds = per_second
        .len()
        .max(report.done_per_second.len())
        .max(report.errors_per_second.len());
    let x_max = (seconds as f64).max(1.0);
    let y_max = max.iter().map(|p| p.1).fold(all99, f64::max).max(0.001) * 1.1;

    let root = SVGBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let (upper, lower) = root.split_vertically(500);
    let title = format!(
        "otpgw bench {}: latency (ms, log scale) by second of the run",
        report.mode
    );
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (FLOOR_MS..y_max).log_scale())
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start (send time)")
        .y_desc("latency, ms (log)")
        .draw()
        .map_err(failed)?;
    let lines = [
        ("p50 per second", &p50, BLUE),
        ("p99 per second", &p99, RED),
        ("max per second", &max, RGBColor(160, 160, 160)),
    ];
    for (label, points, color) in lines {
        named(&mut chart, label, color, line(points, color))?;
    }
    for (label, value, color) in [
        (format!("p50 overall {all50:.2} ms"), all50, BLUE),
        (format!("p99 overall {all99:.2} ms"), all99, RED),
    ] {
        let dashed =
            DashedLineSeries::new([(0.0, value), (x_max, value)], 6, 4, color.stroke_width(1));
        named(&mut chart, label, color, dashed)?;
    }
    legend(&mut chart)?;
    rates(report, &lower, x_max)?;
    root.present().map_err(failed)?;
    Ok(())
}

/// The lower pane: done and errors per second, on a linear scale.
fn rates(
    report: &Report,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    x_max: f64,
) -> Result<()> {
    let points = |series: &[u64]| -> Vec<(f64, f64)> {
        series
            .iter()
            .enumerate()
            .map(|(s, n)| (s as f64 + 0.5, *n as f64))
            .collect()
    };
    let (done, errors) = (
        points(&report.done_per_second),
        points(&report.errors_per_second),
    );
    let y_max = done.iter().chain(&errors).map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} and errors per second", report.throughput_of),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start (when each happened)")
        .y_desc("per second")
        .draw()
        .map_err(failed)?;
    let total_errors: u64 = report.errors.values().sum();
    let lines = [
        (format!("{} per second", report.throughput_of), &done, GREEN),
        (
            format!("errors per second ({total_errors} in all)"),
            &errors,
            RGBColor(230, 120, 0),
        ),
    ];
    for (label, points, color) in lines {
        named(&mut chart, label, color, line(points, color))?;
    }
    legend(&mut chart)?;
    Ok(())
}

/// A series drawn under `label`, with a short stroke of its colour as its legend mark,
/// so that both panes' legends read alike.
fn named<'a, DB, CT, S, E>(
    chart: &mut ChartContext<'a, DB, CT>,
    label: impl Into<String>,
    color: RGBColor,
    series: S,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
    S: IntoIterator<Item = E>,
    E: Drawable<DB>,
    for<'b> &'b E: PointCollection<'b, CT::From>,
{
    chart
        .draw_series(series)
        .map_err(failed)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    Ok(())
}

/// A solid line through one point per second.
fn line<DB: DrawingBackend>(points: &[(f64, f64)], color: RGBColor) -> LineSeries<DB, (f64, f64)> {
    LineSeries::new(points.iter().copied(), color.stroke_width(2))
}

/// The legend box is translucent so that a line running under it stays visible.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)
}

/// plotters' own messages do not say that they come from drawing the plot.
fn failed(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Both panes are drawn, each series named in its legend.
    #[test]
    fn the_plot_has_latency_and_the_rates_below_it() {
        let mut r = Report::new("sms", "replies_with_code");
        for s in 0..5u64 {
            r.latency.record(
                Duration::from_millis(s * 1000 + 10),
                Duration::from_millis(3),
            );
        }
        r.done_per_second = vec![120, 130, 0, 125];
        r.errors_per_second = vec![0, 0, 4];
        r.error("timeout");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        draw(&r, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for label in [
            "p99 per second",
            "replies_with_code per second",
            "errors per second (1 in all)",
        ] {
            assert!(svg.contains(label), "{label} not in the plot");
        }
    }
}
