//! `vigie eval --report DIR`: a precision-recall curve, a score histogram and a reliability
//! diagram (SVG, drawn with plotters), and an index.html that shows them with the metrics.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use vigie_analyse::metrics::{self, LabelMetrics};

type Columns = BTreeMap<String, (Vec<f32>, Vec<bool>)>;

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e:?}")
}

/// Writes the report of one evaluation into `dir`.
pub fn write(
    dir: &Path,
    model: &str,
    data: &Path,
    metrics: &BTreeMap<String, LabelMetrics>,
    columns: &Columns,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    pr_curves(&dir.join("pr-curve.svg"), columns)?;
    let danger = columns.get(vigie_analyse::Taxonomy::DANGER);
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
    std::fs::write(dir.join("index.html"), html)?;
    Ok(())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn pr_curves(path: &Path, columns: &Columns) -> Result<()> {
    let root = SVGBackend::new(path, (640, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Precision-recall", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("recall")
        .y_desc("precision")
        .draw()
        .map_err(plot_err)?;
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
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}

fn histogram(path: &Path, scores: &[f32], truth: &[bool]) -> Result<()> {
    const BINS: usize = 20;
    let mut counts = [[0u32; BINS]; 2];
    for (&s, &t) in scores.iter().zip(truth) {
        let b = ((s.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        counts[usize::from(t)][b] += 1;
    }
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1);
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("danger scores", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..1f64, 0u32..top + top / 10 + 1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("score")
        .y_desc("posts")
        .draw()
        .map_err(plot_err)?;
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
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}

fn reliability(path: &Path, scores: &[f32], truth: &[bool]) -> Result<()> {
    let root = SVGBackend::new(path, (480, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Reliability (10 bins)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("mean score")
        .y_desc("share positive")
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(plot_err)?;
    let points: Vec<(f64, f64)> = metrics::reliability(scores, truth, 10)
        .into_iter()
        .filter(|b| b.count > 0)
        .map(|b| (b.mean_score, b.positive_rate))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), RED.stroke_width(2)))
        .map_err(plot_err)?;
    chart
        .draw_series(points.into_iter().map(|p| Circle::new(p, 4, RED.filled())))
        .map_err(plot_err)?;
    root.present().map_err(plot_err)
}
