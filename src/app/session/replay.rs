//! `nubpf-tui replay FILE`: plays a recording back through the same user-space pipelines and
//! output formats as `run`, without root: as fast as possible, or at recorded speed times N.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nu_protocol::{Record, Span as NuSpan, Value};
use nubpf_ebpf::Span;

use super::{RecordedProbe, Recording};
use crate::app::output::{self, Format, TableRenderer};
use crate::app::pipeline::{ChannelInput, Pipeline};
use crate::app::run::exit;
use crate::probes::front::diagnostic;

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub format: Format,
    /// `None`: as fast as possible; `Some(n)`: recorded speed times `n`.
    pub speed: Option<f64>,
}

/// A recorded row as a Nushell record, NULL columns left out.
fn row_value(probe: &RecordedProbe, row: &rusqlite::Row) -> rusqlite::Result<(i64, Value)> {
    let span = NuSpan::unknown();
    let ts: i64 = row.get(0)?;
    let mut record = Record::new();
    for (i, (name, _)) in probe.columns.iter().enumerate() {
        use rusqlite::types::ValueRef;
        let v = match row.get_ref(i + 1)? {
            ValueRef::Null => continue,
            ValueRef::Integer(n) => Value::int(n, span),
            ValueRef::Real(f) => Value::float(f, span),
            ValueRef::Text(t) => Value::string(String::from_utf8_lossy(t), span),
            ValueRef::Blob(b) => Value::binary(b.to_vec(), span),
        };
        record.push(name.clone(), v);
    }
    Ok((ts, Value::record(record, span)))
}

fn quoted(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

/// Reads every probe's rows in recorded order (by timestamp, then by sequence) and hands
/// them to `f(probe index, value)`; `f` returns false to stop.
pub fn for_each_row(
    rec: &Recording,
    mut f: impl FnMut(usize, i64, Value) -> bool,
) -> Result<(), rusqlite::Error> {
    let mut statements = Vec::new();
    for p in &rec.probes {
        let mut cols = vec!["ts".to_string()];
        cols.extend(p.columns.iter().map(|(n, _)| quoted(n)));
        statements.push(rec.conn.prepare(&format!(
            "SELECT {} FROM {} ORDER BY seq",
            cols.join(", "),
            quoted(&p.table)
        ))?);
    }
    let mut cursors = Vec::new();
    for s in statements.iter_mut() {
        cursors.push(s.query([])?);
    }
    let mut heads: Vec<Option<(i64, Value)>> = Vec::with_capacity(cursors.len());
    for (i, c) in cursors.iter_mut().enumerate() {
        heads.push(match c.next()? {
            Some(row) => Some(row_value(&rec.probes[i], row)?),
            None => None,
        });
    }
    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|(ts, _)| (*ts, i)))
            .min();
        let Some((_, i)) = next else { break };
        let (ts, value) = heads[i]
            .take()
            .unwrap_or((0, Value::nothing(NuSpan::unknown())));
        if !f(i, ts, value) {
            break;
        }
        heads[i] = match cursors[i].next()? {
            Some(row) => Some(row_value(&rec.probes[i], row)?),
            None => None,
        };
    }
    Ok(())
}

/// One entry of an aggregation's last recorded snapshot.
struct FinalAggregate {
    probe: String,
    aggregation: String,
    kind: String,
    key: String,
    label: Option<String>,
    value: i64,
}

/// The last snapshot of each recorded aggregation.
fn final_aggregates(rec: &Recording) -> rusqlite::Result<Vec<FinalAggregate>> {
    let mut stmt = rec.conn.prepare(
        "SELECT a.probe, a.aggregation, a.kind, a.key, a.bucket_label, a.value FROM nubpf_aggregates a
         JOIN (SELECT probe, aggregation, max(at) AS last FROM nubpf_aggregates GROUP BY probe, aggregation) l
           ON a.probe = l.probe AND a.aggregation = l.aggregation AND a.at = l.last
         ORDER BY a.probe, a.aggregation, a.key, a.bucket",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(FinalAggregate {
            probe: r.get(0)?,
            aggregation: r.get(1)?,
            kind: r.get(2)?,
            key: r.get(3)?,
            label: r.get(4)?,
            value: r.get(5)?,
        })
    })?;
    rows.collect()
}

fn print_final_aggregates(
    rec: &Recording,
    format: Format,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let Ok(rows) = final_aggregates(rec) else {
        return Ok(());
    };
    let span = NuSpan::unknown();
    let mut last_group = None;
    for FinalAggregate {
        probe,
        aggregation: agg,
        kind,
        key,
        label,
        value,
    } in rows
    {
        match format {
            Format::Json | Format::Nuon => {
                let mut r = Record::new();
                r.push("probe", Value::string(&probe, span));
                r.push("aggregation", Value::string(&agg, span));
                r.push("key", Value::string(&key, span));
                if let Some(l) = &label {
                    r.push("bucket", Value::string(l, span));
                }
                r.push(kind.clone(), Value::int(value, span));
                let v = Value::record(r, span);
                if format == Format::Json {
                    output::write_json_value(out, &v)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{}", output::nuon_line(&v))?;
                }
            }
            Format::Table => {
                let group = (probe.clone(), agg.clone(), key.clone());
                if last_group.as_ref() != Some(&group) {
                    let key = if key == "[]" {
                        String::new()
                    } else {
                        key.clone()
                    };
                    writeln!(out, "@{agg}{key} ({probe}):")?;
                    last_group = Some(group);
                }
                match label {
                    Some(l) => writeln!(out, "  {l:<16} {value:>10}")?,
                    None => writeln!(out, "  {value}")?,
                }
            }
        }
    }
    out.flush()
}

/// Replays `path`.
pub fn replay(path: &Path, opts: ReplayOptions) -> ExitCode {
    let rec = match Recording::open(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nubpf-tui replay: {e}");
            return ExitCode::from(exit::SCRIPT);
        }
    };
    let script = rec.script().to_string();
    let name = rec.path.clone();
    let out = Arc::new(Mutex::new(std::io::BufWriter::new(std::io::stdout())));
    let renderer = Arc::new(TableRenderer::new(output::terminal_width()));
    let failed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));

    // One pipeline thread per probe that has a pipeline; the others print directly.
    let mut senders = Vec::new();
    let mut jobs = Vec::new();
    for p in &rec.probes {
        let Some((text, start, end)) = p.pipeline.clone() else {
            senders.push(None);
            continue;
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Value>(65_536);
        senders.push(Some(tx));
        let (script, name, out, renderer, failed, stop) = (
            script.clone(),
            name.clone(),
            out.clone(),
            renderer.clone(),
            failed.clone(),
            stop.clone(),
        );
        let format = opts.format;
        jobs.push(std::thread::spawn(move || {
            let pipeline = match Pipeline::from_text(&script, &text, Span::new(start, end)) {
                Ok(p) => p,
                Err(d) => {
                    failed.store(true, Ordering::Relaxed);
                    eprint!("{}", diagnostic::render(&name, &script, &[d]));
                    return;
                }
            };
            let mut rows = Vec::new();
            let result = pipeline.run(ChannelInput { rx, stop }, script.len(), |v| {
                if format == Format::Table {
                    rows.push(v);
                } else if let Ok(mut o) = out.lock() {
                    print_value(&mut *o, format, &v);
                }
            });
            if !rows.is_empty()
                && let Ok(mut o) = out.lock()
            {
                let _ = writeln!(
                    o,
                    "{}",
                    renderer.render(Value::list(rows, NuSpan::unknown()))
                );
            }
            if let Err(d) = result {
                failed.store(true, Ordering::Relaxed);
                eprint!("{}", diagnostic::render(&name, &script, &[d]));
            }
        }));
    }

    let started = Instant::now();
    let mut table_rows: Vec<Vec<Value>> = vec![Vec::new(); rec.probes.len()];
    let read = for_each_row(&rec, |i, ts, value| {
        if let Some(speed) = opts.speed {
            let due = Duration::from_nanos((ts.max(0) as f64 / speed) as u64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        match &senders[i] {
            Some(tx) => {
                // A pipeline that stopped reading (`first 3`) just stops receiving.
                let _ = tx.send(value);
            }
            None if opts.format == Format::Table => table_rows[i].push(value),
            None => {
                if let Ok(mut o) = out.lock() {
                    print_value(&mut *o, opts.format, &value);
                }
            }
        }
        true
    });
    drop(senders);
    for j in jobs {
        let _ = j.join();
    }
    if let Ok(mut o) = out.lock() {
        let several = rec.probes.len() > 1;
        for (p, rows) in rec.probes.iter().zip(table_rows) {
            if rows.is_empty() {
                continue;
            }
            if several {
                let _ = writeln!(o, "{}:", p.name);
            }
            let _ = writeln!(
                o,
                "{}",
                renderer.render(Value::list(rows, NuSpan::unknown()))
            );
        }
        let _ = print_final_aggregates(&rec, opts.format, &mut *o);
        let _ = o.flush();
    }
    if let Err(e) = read {
        eprintln!("nubpf-tui replay: reading {name} failed: {e}");
        return ExitCode::from(exit::SCRIPT);
    }
    if failed.load(Ordering::Relaxed) {
        ExitCode::from(exit::SCRIPT)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_value(out: &mut impl Write, format: Format, v: &Value) {
    match format {
        Format::Json => {
            let _ = output::write_json_value(out, v);
            let _ = out.write_all(b"\n");
        }
        Format::Nuon => {
            let _ = writeln!(out, "{}", output::nuon_line(v));
        }
        Format::Table => {}
    }
}
