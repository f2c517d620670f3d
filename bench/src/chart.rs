//! The SVG chart of throughput against connection count, one line per server.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

/// One server's line: its name and `(connections, ops/s)` points.
pub type Series = (&'static str, Vec<(usize, f64)>);

/// Draws `series` into an SVG file at `path`, connection counts on a log
/// scale.
pub fn throughput_chart(path: &Path, title: &str, series: &[Series]) -> anyhow::Result<()> {
    let max_conns = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(conns, _)| *conns))
        .max()
        .unwrap_or(1)
        .max(2);
    let max_ops = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, ops)| *ops))
        .fold(1.0, f64::max);

    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).context("drawing the chart")?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0f64..max_conns as f64).log_scale(), 0.0..max_ops * 1.1)
        .context("drawing the chart")?;
    chart
        .configure_mesh()
        .x_desc("concurrent connections")
        .y_desc("round trips per second")
        .x_label_formatter(&|conns| format!("{conns:.0}"))
        .y_label_formatter(&|ops| format!("{:.0}k", ops / 1000.0))
        .draw()
        .context("drawing the chart")?;
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for ((name, points), color) in series.iter().zip(colors) {
        let points: Vec<(f64, f64)> = points
            .iter()
            .map(|(conns, ops)| (*conns as f64, *ops))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .context("drawing the chart")?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|point| Circle::new(point, 3, color.filled())),
            )
            .context("drawing the chart")?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .context("drawing the chart")?;
    root.present().context("writing the chart")?;
    Ok(())
}
