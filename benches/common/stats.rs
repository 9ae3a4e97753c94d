//! The numbers of a summary: latency histograms, medians and ranges over rounds, and how
//! they are printed.

use hdrhistogram::Histogram;

/// A latency histogram in nanoseconds: 1 ns .. 60 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The smallest and the largest of `values` (infinities for none).
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// `median [min, max]` of `values`, each formatted by `f`.
pub fn spread(values: &[f64], f: impl Fn(f64) -> String) -> String {
    let (lo, hi) = min_max(values);
    format!("{} [{}, {}]", f(median(values)), f(lo), f(hi))
}

/// Nanoseconds as microseconds, one decimal.
pub fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}
