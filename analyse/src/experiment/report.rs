//! `vigie eval --report DIR`: a precision-recall curve, a score histogram and a reliability
//! diagram (SVG, drawn with plotters), and an index.html that shows them with the metrics.

use super::eval::Columns;
use super::{create_dir, write_file, ExperimentError};
use crate::metrics::{self, LabelMetrics};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

type Result<T> = std::result::Result<T, ExperimentError>;

fn plot_err<E: std::fmt::Debug>(e: E) -> ExperimentError {
    ExperimentError::Drawing(format!("{e:?}"))
}

/// Writes the report of one evaluation into `dir`: `pr-curve.svg` (every label of `columns`),
/// `histogram.svg` and `reliability.svg` (`danger`, when measured), and `index.html`, which
/// shows them with `metrics` and the reliability table.
pub fn write(
    dir: &Path,
    model: &str,
    data: &Path,
    metrics: &BTreeMap<String, LabelMetrics>,
    columns: &Columns,
) -> Result<()> {
    create_dir(dir)?;
    pr_curves(&dir.join("pr-curve.svg"), columns)?;
    let danger = columns.get(crate::Taxonomy::DANGER);
    if let Some((scores, truth)) = danger {
        histogram(&dir.join("histogram.svg"), scores, truth)?;
        reliability(&dir.join("reliability.svg"), scores, truth)?;
    }
    let mut html = format!(
        "<!doctype html><meta charset=utf-8><title>Vigie evaluation</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         td,th{{padding:.2em .8em;text-align:right}}</style>\
         <h1>Evaluation of {model}</h1><p>Data: <code>{}</code></p>\
         <table><tr><th>label<th>n<th>positives<th>precision<th>recall<th>F1<th>AP<th>ECE",
        html_escape(&data.display().to_string())
    );
    for (label, m) in metrics {
        let _ = write!(
            html,
            "<tr><td>{label}<td>{}<td>{}<td>{:.3}<td>{:.3}<td>{:.3}<td>{:.3}<td>{:.3}",
            m.n, m.positives, m.precision, m.recall, m.f1, m.average_precision, m.ece
        );
    }
    html.push_str("</table><h2>Precision-recall</h2><img src=pr-curve.svg>");
    if let Some((scores, truth)) = danger {
        html.push_str(
            "<h2>danger: score histogram</h2><img src=histogram.svg>\
             <h2>danger: reliability</h2><img src=reliability.svg>\
             <table><tr><th>scores<th>posts<th>mean score<th>positive rate",
        );
        for b in metrics::reliability(scores, truth, 10) {
            let _ = write!(
                html,
                "<tr><td>{:.1}–{:.1}<td>{}<td>{:.3}<td>{:.3}",
                b.from, b.to, b.count, b.mean_score, b.positive_rate
            );
        }
        html.push_str("</table>");
    }
    write_file(&dir.join("index.html"), html)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart of one SVG file: a white page of `size`, a caption, and a mesh with named axes,
/// x from 0 to 1.
struct Frame<'a> {
    path: &'a Path,
    size: (u32, u32),
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
}

/// A chart over x in [0, 1] and a y axis of `Y`, drawn on an SVG file.
type Chart<'a, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>;

impl<'a> Frame<'a> {
    /// The frame of the SVG file `path`, its caption and axes' names (x, then y).
    fn new(path: &'a Path, size: (u32, u32), caption: &'a str, axes: [&'a str; 2]) -> Self {
        Frame {
            path,
            size,
            caption,
            x_desc: axes[0],
            y_desc: axes[1],
        }
    }

    /// Draws the frame with `y` as the y axis, then `series` on it, and writes the file.
    fn draw<Y, V>(
        &self,
        y: impl AsRangedCoord<CoordDescType = Y, Value = V>,
        series: impl FnOnce(&mut Chart<'_, Y>) -> Result<()>,
    ) -> Result<()>
    where
        Y: Ranged<ValueType = V> + ValueFormatter<V>,
    {
        let root = SVGBackend::new(self.path, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.caption, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..1f64, y)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .draw()
            .map_err(plot_err)?;
        series(&mut chart)?;
        root.present().map_err(plot_err)
    }
}

/// Draws the legend of the labelled series of `chart`.
fn legend<Y: Ranged>(chart: &mut Chart<'_, Y>) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

fn pr_curves(path: &Path, columns: &Columns) -> Result<()> {
    let frame = Frame::new(
        path,
        (640, 480),
        "Precision-recall",
        ["recall", "precision"],
    );
    frame.draw(0f64..1.02f64, |chart| {
        for (i, (label, (scores, truth))) in columns.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = metrics::pr_curve(scores, truth)
                .into_iter()
                .map(|(p, r)| (r, p))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        }
        legend(chart)
    })
}

fn histogram(path: &Path, scores: &[f32], truth: &[bool]) -> Result<()> {
    const BINS: usize = 20;
    let mut counts = [[0u32; BINS]; 2];
    for (&s, &t) in scores.iter().zip(truth) {
        let b = ((s.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        counts[usize::from(t)][b] += 1;
    }
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1);
    let frame = Frame::new(path, (640, 400), "danger scores", ["score", "posts"]);
    frame.draw(0u32..top + top / 10 + 1, |chart| {
        for (class, (name, color)) in [("negatives", BLUE), ("positives", RED)].iter().enumerate() {
            let width = 1.0 / BINS as f64;
            let bars = counts[class].iter().enumerate().map(|(b, &c)| {
                let x0 = b as f64 * width + if class == 1 { width / 2.0 } else { 0.0 };
                Rectangle::new([(x0, 0), (x0 + width / 2.0, c)], color.mix(0.6).filled())
            });
            chart
                .draw_series(bars)
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        legend(chart)
    })
}

fn reliability(path: &Path, scores: &[f32], truth: &[bool]) -> Result<()> {
    let frame = Frame::new(
        path,
        (480, 480),
        "Reliability (10 bins)",
        ["mean score", "share positive"],
    );
    let points: Vec<(f64, f64)> = metrics::reliability(scores, truth, 10)
        .into_iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.mean_score, b.positive_rate))
        .collect();
    frame.draw(0f64..1f64, |chart| {
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(points.clone(), RED.stroke_width(2)))
            .map_err(plot_err)?;
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 4, RED.filled())))
            .map_err(plot_err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::tests::metrics;

    #[test]
    fn writes_the_three_charts_and_an_index_from_synthetic_scores() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report");
        let scores: Vec<f32> = (0..200).map(|i| (i % 100) as f32 / 100.0).collect();
        let truth: Vec<bool> = scores.iter().map(|&s| s > 0.6).collect();
        let columns = Columns::from([
            ("danger".to_string(), (scores.clone(), truth.clone())),
            (
                "fire".to_string(),
                (scores[..50].to_vec(), truth[..50].to_vec()),
            ),
        ]);
        let m = BTreeMap::from([("danger".to_string(), metrics(200, 0.9))]);
        write(&out, "heads-0123", Path::new("a<b>&c.jsonl"), &m, &columns).unwrap();
        for f in ["pr-curve.svg", "histogram.svg", "reliability.svg"] {
            let svg = std::fs::read_to_string(out.join(f)).unwrap();
            assert!(svg.starts_with("<svg") && svg.len() > 200, "{f}: {svg}");
        }
        let pr = std::fs::read_to_string(out.join("pr-curve.svg")).unwrap();
        assert!(
            pr.contains("danger") && pr.contains("fire"),
            "a legend per label"
        );
        let html = std::fs::read_to_string(out.join("index.html")).unwrap();
        assert!(html.contains("<h1>Evaluation of heads-0123</h1>"));
        assert!(html.contains("<code>a&lt;b&gt;&amp;c.jsonl</code>"));
        assert!(html.contains("<tr><td>danger<td>200<td>100<td>0.900"));
        assert_eq!(
            html.matches("<tr><td>0.").count() + html.matches("<tr><td>1.").count(),
            10
        );
    }

    #[test]
    fn without_danger_only_the_precision_recall_chart_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let columns = Columns::from([("fire".to_string(), (vec![0.2, 0.8], vec![false, true]))]);
        write(dir.path(), "m", Path::new("d"), &BTreeMap::new(), &columns).unwrap();
        assert!(dir.path().join("pr-curve.svg").is_file());
        assert!(!dir.path().join("histogram.svg").exists());
        let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
        assert!(!html.contains("reliability"));
    }
}
