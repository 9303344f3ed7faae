//! Classifier metrics: precision, recall, F1, average precision, calibration.

use serde::{Deserialize, Serialize};

/// Metrics of one label on one dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelMetrics {
    /// Posts with a known value for the label.
    pub n: usize,
    /// Positives among them.
    pub positives: usize,
    /// Precision at the threshold (0 when nothing is predicted positive).
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
    /// Average precision (area under the precision-recall curve, step-wise).
    pub average_precision: f64,
    /// Expected calibration error over 10 equal-width bins.
    pub ece: f64,
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bin {
    /// Lower edge of the score range.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Posts whose score falls in the bin.
    pub count: usize,
    /// Their mean score.
    pub mean_score: f64,
    /// The share of them that are positive.
    pub positive_rate: f64,
}

/// Computes the metrics of `scores` against `labels` (true = positive) at `threshold`.
pub fn evaluate(scores: &[f32], labels: &[bool], threshold: f32) -> LabelMetrics {
    assert_eq!(scores.len(), labels.len());
    let positives = labels.iter().filter(|&&l| l).count();
    let (mut tp, mut fp) = (0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        if s >= threshold {
            if l {
                tp += 1;
            } else {
                fp += 1;
            }
        }
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, positives);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let bins = reliability(scores, labels, 10);
    let n = scores.len().max(1) as f64;
    let ece = bins
        .iter()
        .map(|b| b.count as f64 / n * (b.mean_score - b.positive_rate).abs())
        .sum();
    LabelMetrics {
        n: scores.len(),
        positives,
        precision,
        recall,
        f1,
        average_precision: average_precision(scores, labels),
        ece,
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Indices of `scores`, highest first (ties in input order).
fn ranked(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Average precision: the mean, over positives, of the precision at each positive's rank,
/// with tied scores ranked together (their precision is taken at the end of the tie).
pub fn average_precision(scores: &[f32], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return 0.0;
    }
    pr_curve(scores, labels)
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) * w[1].0)
        .sum()
}

/// The precision-recall curve as (precision, recall) points, one per distinct score, from the
/// highest score down, starting at (1, 0).
pub fn pr_curve(scores: &[f32], labels: &[bool]) -> Vec<(f64, f64)> {
    let positives = labels.iter().filter(|&&l| l).count();
    let order = ranked(scores);
    let mut points = vec![(1.0, 0.0)];
    let (mut tp, mut seen) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        seen += 1;
        tp += usize::from(labels[i]);
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            points.push((ratio(tp, seen), ratio(tp, positives)));
        }
    }
    points
}

/// The reliability table: `bins` equal-width score ranges with their mean score and the
/// observed share of positives.
pub fn reliability(scores: &[f32], labels: &[bool], bins: usize) -> Vec<Bin> {
    let mut sums = vec![(0usize, 0f64, 0usize); bins];
    for (&s, &l) in scores.iter().zip(labels) {
        let b = ((s.clamp(0.0, 1.0) * bins as f32) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += f64::from(s);
        sums[b].2 += usize::from(l);
    }
    sums.into_iter()
        .enumerate()
        .map(|(i, (count, total, pos))| Bin {
            from: i as f64 / bins as f64,
            to: (i + 1) as f64 / bins as f64,
            count,
            mean_score: if count > 0 { total / count as f64 } else { 0.0 },
            positive_rate: ratio(pos, count),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // Ranked: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.2 (neg).
        let scores = [0.9, 0.2, 0.7, 0.8];
        let labels = [true, false, true, false];
        let m = evaluate(&scores, &labels, 0.5);
        assert_eq!((m.n, m.positives), (4, 2));
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.recall, 1.0);
        assert!((m.f1 - 0.8).abs() < 1e-9);
        // AP = (1/1 + 2/3) / 2.
        assert!((m.average_precision - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn ties_do_not_flatter_the_ranking() {
        // All tied: AP equals the base rate whatever the input order.
        let scores = [0.5, 0.5, 0.5, 0.5];
        assert!((average_precision(&scores, &[true, false, false, false]) - 0.25).abs() < 1e-9);
        assert!((average_precision(&scores, &[false, false, false, true]) - 0.25).abs() < 1e-9);
    }

    #[test]
    fn calibration_error_of_perfect_and_overconfident_scores() {
        // Scores of 0.25 where a quarter are positive: calibrated.
        let scores = [0.25f32; 8];
        let labels = [true, false, false, false, true, false, false, false];
        assert!(evaluate(&scores, &labels, 0.5).ece < 1e-6);
        // Scores of 0.95 where half are positive: ECE 0.45.
        let m = evaluate(&[0.95; 4], &[true, false, true, false], 0.5);
        assert!((m.ece - 0.45).abs() < 1e-6, "{}", m.ece);
        let bins = reliability(&[0.95; 4], &[true, false, true, false], 10);
        assert_eq!(bins[9].count, 4);
        assert_eq!(bins[9].positive_rate, 0.5);
    }
}
