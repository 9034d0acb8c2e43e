//! Output of `run`: records and aggregations as Nushell tables, NDJSON or NUON.

use std::io::Write;
use std::sync::Arc;

use nu_protocol::ast::Block;
use nu_protocol::debugger::WithoutDebug;
use nu_protocol::engine::{EngineState, Stack, StateWorkingSet};
use nu_protocol::{PipelineData, Record, Span, Value};

use super::aggregates::{self, histogram_groups, histogram_text, is_histogram, sorted_entries};
use super::values::{to_nu, write_json_str};
use crate::probes::front::engine::engine_state;
use crate::probes::runtime::maps::{AggSnapshot, Merged};
use nubpf_ebpf::layout::AggLayout;

/// How `run` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Nushell tables, in chunks as records stream in.
    Table,
    /// One JSON object per line.
    Json,
    /// One NUON value per line.
    Nuon,
}

/// Renders values with Nushell's own `table` command.
pub struct TableRenderer {
    engine: EngineState,
    block: Arc<Block>,
}

impl TableRenderer {
    pub fn new(width: usize) -> TableRenderer {
        let mut engine = engine_state().clone();
        let (block, delta) = {
            let mut ws = StateWorkingSet::new(&engine);
            let src = format!("table --width {width}");
            let block = nu_parser::parse(&mut ws, None, src.as_bytes(), false);
            (block, ws.render())
        };
        // `table` is a registered command: merging its parse cannot fail.
        let _ = engine.merge_delta(delta);
        TableRenderer { engine, block }
    }

    /// The table text for `value` (a list of records, a record or a scalar).
    pub fn render(&self, value: Value) -> String {
        let mut stack = Stack::new();
        let text = nu_engine::eval_block::<WithoutDebug>(
            &self.engine,
            &mut stack,
            &self.block,
            PipelineData::value(value.clone(), None),
        )
        .ok()
        .and_then(|data| data.body.into_value(Span::unknown()).ok())
        .and_then(|v| v.coerce_into_string().ok());
        text.unwrap_or_else(|| value.to_expanded_string(", ", &nu_protocol::Config::default()))
    }
}

/// The terminal width, or 120 when stdout is not a terminal.
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a `winsize` and touches nothing else.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            return ws.ws_col as usize;
        }
    }
    120
}

/// JSON for any Nushell value a pipeline may produce.
pub fn write_json_value(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Bool { val, .. } => write!(out, "{val}"),
        Value::Int { val, .. } => write!(out, "{val}"),
        Value::Float { val, .. } if val.is_finite() => write!(out, "{val}"),
        Value::Float { .. } | Value::Nothing { .. } => out.write_all(b"null"),
        Value::Filesize { val, .. } => write!(out, "{}", val.get()),
        Value::Duration { val, .. } => write!(out, "{val}"),
        Value::String { val, .. } => write_json_str(out, val),
        Value::Record { val, .. } => {
            out.write_all(b"{")?;
            for (i, (k, v)) in val.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_json_str(out, k)?;
                out.write_all(b":")?;
                write_json_value(out, v)?;
            }
            out.write_all(b"}")
        }
        Value::List { vals, .. } => {
            out.write_all(b"[")?;
            for (i, v) in vals.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_json_value(out, v)?;
            }
            out.write_all(b"]")
        }
        other => write_json_str(
            out,
            &other.to_expanded_string(", ", &nu_protocol::Config::default()),
        ),
    }
}

/// One value as a single line of NUON.
pub fn nuon_line(v: &Value) -> String {
    nuon::to_nuon(engine_state(), v, nuon::ToNuonConfig::default())
        .unwrap_or_else(|e| format!("# cannot write as NUON: {e}"))
}

/// Aggregation snapshots as values: one record per entry, key columns first.
pub fn aggregation_rows(layout: &AggLayout, snapshot: &AggSnapshot) -> Vec<Value> {
    let span = Span::unknown();
    let keys = aggregates::key_columns(layout);
    snapshot
        .entries
        .iter()
        .map(|e| {
            let mut r = Record::new();
            r.push("aggregation", Value::string(&snapshot.name, span));
            for (k, v) in keys.iter().zip(&e.key) {
                r.push(k.clone(), to_nu(v, span));
            }
            if let Some(b) = e.bucket {
                r.push(
                    "bucket",
                    Value::string(aggregates::bucket_label(layout.kind, b), span),
                );
            }
            let value = e.value.value();
            let value = i64::try_from(value)
                .map(|v| Value::int(v, span))
                .unwrap_or_else(|_| Value::string(value.to_string(), span));
            let column = match e.value {
                Merged::Count(_) => "count",
                Merged::Sum(_) => "sum",
                Merged::Min(_) => "min",
                Merged::Max(_) => "max",
                Merged::Avg { .. } => "avg",
            };
            r.push(column, value);
            Value::record(r, span)
        })
        .collect()
}

/// Prints aggregations: tables and bpftrace-style histograms for `Table`, one line per entry
/// for `Json` and `Nuon`.
pub fn print_aggregations(
    out: &mut impl Write,
    format: Format,
    layouts: &[AggLayout],
    snapshots: &[AggSnapshot],
    renderer: &TableRenderer,
) -> std::io::Result<()> {
    for (layout, snapshot) in layouts.iter().zip(snapshots) {
        match format {
            Format::Json | Format::Nuon => {
                for row in aggregation_rows(layout, snapshot) {
                    if format == Format::Json {
                        write_json_value(out, &row)?;
                        out.write_all(b"\n")?;
                    } else {
                        writeln!(out, "{}", nuon_line(&row))?;
                    }
                }
            }
            Format::Table if is_histogram(layout.kind) => {
                for (key, buckets) in histogram_groups(snapshot) {
                    let key: Vec<String> = aggregates::key_columns(layout)
                        .iter()
                        .zip(&key)
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    if key.is_empty() {
                        writeln!(out, "@{}:", snapshot.name)?;
                    } else {
                        writeln!(out, "@{}[{}]:", snapshot.name, key.join(", "))?;
                    }
                    write!(out, "{}", histogram_text(layout.kind, &buckets, 52))?;
                    writeln!(out)?;
                }
                if snapshot.entries.is_empty() {
                    writeln!(out, "@{}: (empty)\n", snapshot.name)?;
                }
            }
            Format::Table => {
                if layout.key.fields.is_empty() {
                    let value = snapshot.entries.first().map_or(0, |e| e.value.value());
                    writeln!(out, "@{}: {value}", snapshot.name)?;
                    continue;
                }
                writeln!(out, "@{}:", snapshot.name)?;
                let keys = aggregates::key_columns(layout);
                let span = Span::unknown();
                let rows: Vec<Value> = sorted_entries(snapshot)
                    .into_iter()
                    .map(|e| {
                        let mut r = Record::new();
                        for (k, v) in keys.iter().zip(&e.key) {
                            r.push(k.clone(), to_nu(v, span));
                        }
                        let value = e.value.value();
                        r.push(
                            snapshot.name.clone(),
                            i64::try_from(value)
                                .map(|v| Value::int(v, span))
                                .unwrap_or_else(|_| Value::string(value.to_string(), span)),
                        );
                        Value::record(r, span)
                    })
                    .collect();
                if rows.is_empty() {
                    writeln!(out, "(empty)")?;
                } else {
                    writeln!(out, "{}", renderer.render(Value::list(rows, span)))?;
                }
            }
        }
    }
    out.flush()
}
