//! Aggregation snapshots made presentable: bucket labels, histogram groups per key, rows
//! sorted by value. Shared by `run`'s output and the workbench's views.

use nubpf_ebpf::ir::AggKind;
use nubpf_ebpf::layout::{AggLayout, lhist_buckets, log2_bucket_range};

use crate::probes::runtime::decode::Value as Decoded;
use crate::probes::runtime::maps::{AggEntry, AggSnapshot, Merged};

/// A number with a binary suffix, as bpftrace labels histogram buckets (`1K`, `4M`).
pub fn short_number(v: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (size, unit) in UNITS {
        if v != 0 && v % size == 0 && v.abs() >= size {
            return format!("{}{unit}", v / size);
        }
    }
    v.to_string()
}

/// The label of a histogram bucket: `[4, 8)`, `[0]`, `(..., 0)`, `[100, ...)`.
pub fn bucket_label(kind: AggKind, bucket: u64) -> String {
    match kind {
        AggKind::Hist => match log2_bucket_range(bucket) {
            (None, _) => "(..., 0)".into(),
            (Some(0), Some(1)) => "[0]".into(),
            (Some(1), Some(2)) => "[1]".into(),
            (Some(lo), Some(hi)) => format!("[{}, {})", short_number(lo), short_number(hi)),
            (Some(lo), None) => format!("[{}, ...)", short_number(lo)),
        },
        AggKind::Lhist { min, max, step } => {
            let n = lhist_buckets(min, max, step);
            if bucket == 0 {
                format!("(..., {})", short_number(min))
            } else if bucket > n {
                format!("[{}, ...)", short_number(max))
            } else {
                let lo = min + (bucket as i64 - 1) * step;
                let hi = (lo + step).min(max);
                format!("[{}, {})", short_number(lo), short_number(hi))
            }
        }
        _ => String::new(),
    }
}

/// The buckets of one histogram key, in bucket order, gaps between used buckets filled with
/// zeros so the bars read as a distribution.
pub fn histogram_buckets(entries: &[&AggEntry]) -> Vec<(u64, u64)> {
    let mut counts: Vec<(u64, u64)> = entries
        .iter()
        .filter_map(|e| match (e.bucket, e.value) {
            (Some(b), Merged::Count(c)) => Some((b, c)),
            _ => None,
        })
        .collect();
    counts.sort_unstable();
    let (Some(first), Some(last)) = (counts.first().map(|c| c.0), counts.last().map(|c| c.0))
    else {
        return counts;
    };
    (first..=last)
        .map(|b| {
            let c = counts
                .iter()
                .filter(|(x, _)| *x == b)
                .map(|(_, c)| *c)
                .sum();
            (b, c)
        })
        .collect()
}

/// One key's histogram: the key values and `(bucket, count)` pairs.
pub type HistogramGroup = (Vec<Decoded>, Vec<(u64, u64)>);

/// Groups a histogram snapshot's entries by key.
pub fn histogram_groups(snapshot: &AggSnapshot) -> Vec<HistogramGroup> {
    let mut keys: Vec<&Vec<Decoded>> = snapshot.entries.iter().map(|e| &e.key).collect();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let entries: Vec<&AggEntry> = snapshot.entries.iter().filter(|e| &e.key == k).collect();
            (k.clone(), histogram_buckets(&entries))
        })
        .collect()
}

/// Non-histogram entries sorted by value, smallest first (the largest ends up next to the
/// prompt, as in bpftrace).
pub fn sorted_entries(snapshot: &AggSnapshot) -> Vec<&AggEntry> {
    let mut entries: Vec<&AggEntry> = snapshot.entries.iter().collect();
    entries.sort_by(|a, b| {
        a.value
            .value()
            .cmp(&b.value.value())
            .then(a.key.cmp(&b.key))
    });
    entries
}

pub fn is_histogram(kind: AggKind) -> bool {
    matches!(kind, AggKind::Hist | AggKind::Lhist { .. })
}

/// Text bars like bpftrace's `hist()`: one line per bucket with count and a bar.
pub fn histogram_text(kind: AggKind, buckets: &[(u64, u64)], width: usize) -> String {
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let labels: Vec<String> = buckets
        .iter()
        .map(|(b, _)| bucket_label(kind, *b))
        .collect();
    let label_width = labels.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for ((_, count), label) in buckets.iter().zip(labels) {
        let bar = (*count as u128 * width as u128 / max as u128) as usize;
        out.push_str(&format!(
            "{label:<label_width$} {count:>10} |{}{}|\n",
            "@".repeat(bar),
            " ".repeat(width - bar)
        ));
    }
    out
}

/// Key column names of an aggregation.
pub fn key_columns(layout: &AggLayout) -> Vec<String> {
    layout.key.fields.iter().map(|f| f.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_labels_read_like_bpftrace() {
        assert_eq!(bucket_label(AggKind::Hist, 0), "(..., 0)");
        assert_eq!(bucket_label(AggKind::Hist, 1), "[0]");
        assert_eq!(bucket_label(AggKind::Hist, 2), "[1]");
        assert_eq!(bucket_label(AggKind::Hist, 3), "[2, 4)");
        assert_eq!(bucket_label(AggKind::Hist, 12), "[1K, 2K)");
        let l = AggKind::Lhist {
            min: 0,
            max: 100,
            step: 10,
        };
        assert_eq!(bucket_label(l, 0), "(..., 0)");
        assert_eq!(bucket_label(l, 1), "[0, 10)");
        assert_eq!(bucket_label(l, 10), "[90, 100)");
        assert_eq!(bucket_label(l, 11), "[100, ...)");
    }

    #[test]
    fn gaps_are_filled_and_bars_scale() {
        let e = |b, c| AggEntry {
            key: vec![],
            bucket: Some(b),
            value: Merged::Count(c),
        };
        let entries = [e(2, 4), e(5, 2)];
        let refs: Vec<&AggEntry> = entries.iter().collect();
        let buckets = histogram_buckets(&refs);
        assert_eq!(buckets, vec![(2, 4), (3, 0), (4, 0), (5, 2)]);
        let text = histogram_text(AggKind::Hist, &buckets, 8);
        assert_eq!(
            text,
            "[1]              4 |@@@@@@@@|\n\
             [2, 4)           0 |        |\n\
             [4, 8)           0 |        |\n\
             [8, 16)          2 |@@@@    |\n"
        );
    }
}
