//! A recording loaded for the workbench: every probe's rows and aggregation snapshots in
//! memory, with the aggregation layouts rebuilt, so playback can pause, seek and re-run
//! pipelines freely.

use nubpf_ebpf::ir::{AggId, AggKind, Ty};
use nubpf_ebpf::layout::{AggLayout, AggValue, RecordLayout};

use super::{Recording, SessionError};
use crate::probes::runtime::decode::Value as Decoded;
use crate::probes::runtime::maps::{AggEntry, AggSnapshot, Merged};

/// One recorded probe, ready to play.
#[derive(Clone, Debug)]
pub struct PlaybackProbe {
    pub name: String,
    pub kind: String,
    pub target: String,
    /// `(text, start, end)` in the script.
    pub pipeline: Option<(String, u32, u32)>,
    pub columns: Vec<String>,
    /// `(ns since the start, values)`, in recorded order.
    pub rows: Vec<(u64, Vec<Decoded>)>,
    pub layouts: Vec<AggLayout>,
    /// `(ns since the start, one snapshot per layout)`.
    pub snapshots: Vec<(u64, Vec<AggSnapshot>)>,
}

/// A whole recording in memory.
#[derive(Clone, Debug)]
pub struct Playback {
    pub path: String,
    pub script: String,
    pub kernel: String,
    pub probes: Vec<PlaybackProbe>,
    /// The last timestamp of anything recorded.
    pub duration: u64,
}

fn kind_of(name: &str, min: Option<i64>, max: Option<i64>, step: Option<i64>) -> AggKind {
    match (name, min, max, step) {
        ("sum", ..) => AggKind::Sum,
        ("min", ..) => AggKind::Min,
        ("max", ..) => AggKind::Max,
        ("avg", ..) => AggKind::Avg,
        ("hist", ..) => AggKind::Hist,
        ("lhist", Some(min), Some(max), Some(step)) => AggKind::Lhist { min, max, step },
        _ => AggKind::Count,
    }
}

fn json_strings(text: &str) -> Vec<String> {
    // `["a","b"]` as written by the recorder (Rust string escapes).
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                }
                '"' => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// Loads a recording for playback.
pub fn load(path: &std::path::Path) -> Result<Playback, SessionError> {
    let rec = Recording::open(path)?;
    let sql = |e| SessionError::Sqlite(rec.path.clone(), e);
    let mut probes: Vec<PlaybackProbe> = rec
        .probes
        .iter()
        .map(|p| PlaybackProbe {
            name: p.name.clone(),
            kind: p.kind.clone(),
            target: p.target.clone(),
            pipeline: p.pipeline.clone(),
            columns: p.columns.iter().map(|c| c.0.clone()).collect(),
            rows: Vec::new(),
            layouts: Vec::new(),
            snapshots: Vec::new(),
        })
        .collect();
    let mut duration = 0u64;
    super::replay::for_each_row(&rec, |i, ts, value| {
        let ts = ts.max(0) as u64;
        duration = duration.max(ts);
        if let (Some(p), nu_protocol::Value::Record { val, .. }) = (probes.get_mut(i), &value) {
            let row = p
                .columns
                .iter()
                .map(|c| match val.get(c) {
                    Some(nu_protocol::Value::Int { val, .. }) => Decoded::Int(*val),
                    Some(v) => Decoded::Str(v.coerce_string().unwrap_or_default()),
                    None => Decoded::Str(String::new()),
                })
                .collect();
            p.rows.push((ts, row));
        }
        true
    })
    .map_err(sql)?;

    // Aggregation layouts (recordings before this table existed replay without them).
    let has_layouts: i64 = rec
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'nubpf_aggregations'",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if has_layouts > 0 {
        let mut stmt = rec
            .conn
            .prepare("SELECT probe, name, kind, key, min, max, step FROM nubpf_aggregations")
            .map_err(sql)?;
        type Row = (
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        for (i, (table, name, kind, key, min, max, step)) in rows.into_iter().enumerate() {
            let Some(p) = rec.probes.iter().position(|p| p.table == table) else {
                continue;
            };
            let kind = kind_of(&kind, min, max, step);
            let key_names = json_strings(&key);
            let key =
                RecordLayout::key(key_names.iter().map(|n| (n.as_str(), Ty::Str { cap: 64 })));
            probes[p].layouts.push(AggLayout {
                agg: AggId(i as u32),
                name,
                probe: p,
                kind,
                map_name: String::new(),
                key,
                bucket_offset: matches!(kind, AggKind::Hist | AggKind::Lhist { .. }).then_some(0),
                value: AggValue::of(kind),
                signed: true,
            });
        }
        // Snapshots: every `at` of every probe, entries grouped by aggregation.
        let mut stmt = rec
            .conn
            .prepare("SELECT at, probe, aggregation, key, bucket, value FROM nubpf_aggregates ORDER BY at")
            .map_err(sql)?;
        type Snap = (i64, String, String, String, Option<i64>, i64);
        let rows: Vec<Snap> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        for (at, table, agg, key, bucket, value) in rows {
            let Some(p) = rec.probes.iter().position(|p| p.table == table) else {
                continue;
            };
            let probe = &mut probes[p];
            let at = at.max(0) as u64;
            duration = duration.max(at);
            if probe.snapshots.last().is_none_or(|(t, _)| *t != at) {
                let empty = probe
                    .layouts
                    .iter()
                    .map(|l| AggSnapshot {
                        name: l.name.clone(),
                        kind: l.kind,
                        entries: Vec::new(),
                    })
                    .collect();
                probe.snapshots.push((at, empty));
            }
            let Some(index) = probe.layouts.iter().position(|l| l.name == agg) else {
                continue;
            };
            let kind = probe.layouts[index].kind;
            let value = match kind {
                AggKind::Count | AggKind::Hist | AggKind::Lhist { .. } => {
                    Merged::Count(value.max(0) as u64)
                }
                AggKind::Sum => Merged::Sum(value as i128),
                AggKind::Min => Merged::Min(value as i128),
                AggKind::Max => Merged::Max(value as i128),
                AggKind::Avg => Merged::Avg {
                    count: 1,
                    sum: value as i128,
                },
            };
            if let Some((_, snaps)) = probe.snapshots.last_mut() {
                snaps[index].entries.push(AggEntry {
                    key: json_strings(&key).into_iter().map(Decoded::Str).collect(),
                    bucket: bucket.map(|b| b.max(0) as u64),
                    value,
                });
            }
        }
    }
    Ok(Playback {
        path: rec.path.clone(),
        script: rec.script().to_string(),
        kernel: rec.meta.get("kernel").cloned().unwrap_or_default(),
        probes,
        duration,
    })
}
