//! Byte layouts of emitted records and aggregation keys and values.
//!
//! Codegen computes these and writes through them; the decoder in user space reads through
//! the same values. They are never written twice by hand.

use crate::ir::{AggId, AggKind, Ty};

/// One field of a record or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: String,
    pub ty: Ty,
    pub offset: u32,
}

/// Fields laid out in order with natural alignment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordLayout {
    pub fields: Vec<FieldLayout>,
    /// Total size, a multiple of 8.
    pub size: u32,
}

impl RecordLayout {
    /// Lays out `fields` after `start` bytes (a header).
    pub fn new<'a>(start: u32, fields: impl IntoIterator<Item = (&'a str, Ty)>) -> RecordLayout {
        let mut offset = start;
        let fields = fields
            .into_iter()
            .map(|(name, ty)| {
                offset = offset.next_multiple_of(ty.align());
                let field = FieldLayout {
                    name: name.to_string(),
                    ty,
                    offset,
                };
                offset += ty.size();
                field
            })
            .collect();
        RecordLayout {
            fields,
            size: offset.next_multiple_of(8).max(8),
        }
    }

    /// Lays out map key fields: no header, size rounded only to the largest alignment, so a
    /// lone `u32` key takes four bytes. Never empty: an unkeyed map uses one `u32` zero key.
    pub fn key<'a>(fields: impl IntoIterator<Item = (&'a str, Ty)>) -> RecordLayout {
        let mut layout = RecordLayout::new(0, fields);
        let align = layout
            .fields
            .iter()
            .map(|f| f.ty.align())
            .max()
            .unwrap_or(4);
        let end = layout.fields.last().map_or(4, |f| f.offset + f.ty.size());
        layout.size = end.next_multiple_of(align);
        layout
    }

    /// True when some bytes belong to no field, or a string may leave bytes after its NUL:
    /// such keys must be zeroed before they are filled, or equal keys would differ.
    /// True when the fields (and `extra` bytes written after them, such as a histogram
    /// bucket) leave padding in the record.
    pub fn has_padding(&self, extra: u32) -> bool {
        let covered: u32 = self.fields.iter().map(|f| f.ty.size()).sum::<u32>() + extra;
        covered != self.size
    }

    pub fn field(&self, name: &str) -> Option<&FieldLayout> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Bytes before the fields of every ring-buffer record: the `u32` event id, then padding.
pub const EVENT_HEADER: u32 = 8;

/// The layout of one `emit` statement's records in the shared ring buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLayout {
    /// The id in the record's first four bytes; the index into `Compiled::events`.
    pub id: u32,
    /// The probe whose `emit` this is (index into `Module::probes`).
    pub probe: usize,
    /// Field offsets count from the start of the record, header included.
    pub record: RecordLayout,
}

/// How an aggregation's per-CPU value is laid out and merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggValue {
    /// One `u64` counter at 0 (count, and the bucket counters of histograms).
    Counter,
    /// One 64-bit sum at 0.
    Sum,
    /// `u64` number of samples at 0, then the 64-bit minimum / maximum / sum at 8.
    CountAndValue,
}

impl AggValue {
    pub fn of(kind: AggKind) -> AggValue {
        match kind {
            AggKind::Count | AggKind::Hist | AggKind::Lhist { .. } => AggValue::Counter,
            AggKind::Sum => AggValue::Sum,
            AggKind::Min | AggKind::Max | AggKind::Avg => AggValue::CountAndValue,
        }
    }

    pub fn size(self) -> u32 {
        match self {
            AggValue::Counter | AggValue::Sum => 8,
            AggValue::CountAndValue => 16,
        }
    }
}

/// The layout of an aggregation's map: key columns (plus the bucket for histograms) and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggLayout {
    pub agg: AggId,
    pub name: String,
    pub probe: usize,
    pub kind: AggKind,
    /// The map user space reads.
    pub map_name: String,
    /// User key columns; for histograms followed by a `u64` bucket index at `bucket_offset`.
    pub key: RecordLayout,
    pub bucket_offset: Option<u32>,
    pub value: AggValue,
    pub signed: bool,
}

impl AggLayout {
    /// The key size the map is created with (never 0: unkeyed aggregations use one `u64`).
    pub fn key_size(&self) -> u32 {
        self.key.size
    }
}

/// Bucket index of `v` in a log2 histogram: 0 holds negatives, 1 holds zero, and bucket
/// `k >= 2` holds `[2^(k-2), 2^(k-1))`. Codegen computes the same function in the kernel.
pub fn log2_bucket(v: i64) -> u64 {
    if v < 0 {
        0
    } else if v == 0 {
        1
    } else {
        2 + (63 - v.leading_zeros() as u64)
    }
}

/// The inclusive-exclusive value range of a log2 bucket, `None` meaning unbounded.
pub fn log2_bucket_range(bucket: u64) -> (Option<i64>, Option<i64>) {
    match bucket {
        0 => (None, Some(0)),
        1 => (Some(0), Some(1)),
        k => {
            let lo = 1i64 << (k - 2);
            (Some(lo), lo.checked_mul(2))
        }
    }
}

/// Bucket index of `v` in a linear histogram: 0 below `min`, `1 + (v - min) / step` inside,
/// and `lhist_buckets + 1` at or above `max`.
pub fn lhist_bucket(v: i64, min: i64, max: i64, step: i64) -> u64 {
    if v < min {
        0
    } else if v >= max {
        lhist_buckets(min, max, step) + 1
    } else {
        1 + ((v - min) / step) as u64
    }
}

/// Number of in-range buckets of a linear histogram.
pub fn lhist_buckets(min: i64, max: i64, step: i64) -> u64 {
    ((max - min) as u64).div_ceil(step as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::IntTy;

    #[test]
    fn fields_are_naturally_aligned_after_the_header() {
        let l = RecordLayout::new(
            EVENT_HEADER,
            [
                ("flag", Ty::Bool),
                ("pid", Ty::Int(IntTy::U32)),
                ("comm", Ty::Str { cap: 16 }),
                ("ts", Ty::Int(IntTy::U64)),
                ("x", Ty::Int(IntTy::I16)),
            ],
        );
        let offsets: Vec<_> = l.fields.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, vec![8, 12, 16, 32, 40]);
        assert_eq!(l.size, 48);
    }

    #[test]
    fn log2_buckets() {
        assert_eq!(log2_bucket(-5), 0);
        assert_eq!(log2_bucket(0), 1);
        assert_eq!(log2_bucket(1), 2);
        assert_eq!(log2_bucket(2), 3);
        assert_eq!(log2_bucket(3), 3);
        assert_eq!(log2_bucket(4), 4);
        assert_eq!(log2_bucket(1023), 11);
        assert_eq!(log2_bucket(1024), 12);
        assert_eq!(log2_bucket(i64::MAX), 64);
        assert_eq!(log2_bucket_range(12), (Some(1024), Some(2048)));
    }

    #[test]
    fn lhist_buckets_clamp() {
        assert_eq!(lhist_buckets(0, 100, 10), 10);
        assert_eq!(lhist_bucket(-1, 0, 100, 10), 0);
        assert_eq!(lhist_bucket(0, 0, 100, 10), 1);
        assert_eq!(lhist_bucket(99, 0, 100, 10), 10);
        assert_eq!(lhist_bucket(100, 0, 100, 10), 11);
    }
}
