//! Recording a session into one SQLite file: the session's facts, every probe's source and
//! pipeline, every emitted record (one table per probe, typed columns from the event
//! layouts), aggregation snapshots and lost-event counts.
//!
//! Writes happen on a background thread in batched transactions, committed at least every
//! 200 ms, in WAL mode: a SIGKILL loses at most the rows of the last batch, and the file
//! stays valid. Stock Nushell reads it: `open rec.db | get <probe table> | where ...`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};

use super::files::create_private;
use super::{FORMAT_VERSION, SessionError, column_sql_type, table_name};
use crate::probes::front::Script;
use crate::probes::runtime::decode::Value as Decoded;
use crate::probes::runtime::maps::AggSnapshot;
use nubpf_ebpf::ir::Ty;

/// Which columns a record's values fill.
#[derive(Clone, Debug)]
pub enum Columns {
    /// The fields of event layout `id` of the recorded script.
    Event(u32),
    /// Columns by name (the workbench, whose probes are compiled one by one).
    Named(std::sync::Arc<[String]>),
}

/// Something to write.
pub enum Item {
    /// One record of probe `probe` (index in the script).
    Record {
        probe: usize,
        columns: Columns,
        ts: u64,
        values: Vec<Decoded>,
    },
    Aggregates {
        at: u64,
        probe: usize,
        snapshots: Vec<AggSnapshot>,
    },
    Lost {
        at: u64,
        probe: usize,
        lost: u64,
    },
}

/// A recording in progress. Dropping it finishes the file.
pub struct Recorder {
    tx: Option<SyncSender<Item>>,
    thread: Option<JoinHandle<Result<u64, SessionError>>>,
    started: Instant,
}

/// Probe facts written to `nubpf_probes`.
struct ProbeInfo {
    table: String,
    /// Column names per event id of this probe, into the probe table's columns.
    events: HashMap<u32, Vec<usize>>,
    columns: Vec<(String, Ty)>,
}

impl Recorder {
    /// Creates `path` (refusing to overwrite or to follow a symlink), writes the session's
    /// facts and starts the writer thread.
    pub fn create(path: &Path, script: &Script, kernel: &str) -> Result<Recorder, SessionError> {
        let created = create_private(path)?;
        // SQLite creates its WAL and shared-memory files by name, following symlinks: create
        // them first ourselves, privately, so a link planted there is refused, not written
        // through. An empty WAL file is a valid one.
        let mut side_files = Vec::new();
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if let Err(e) = create_private(&p) {
                let _ = std::fs::remove_file(path);
                for f in &side_files {
                    let _ = std::fs::remove_file(f);
                }
                return Err(e);
            }
            side_files.push(p);
        }
        let sql = |e| SessionError::Sqlite(path.display().to_string(), e);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NOFOLLOW
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        // The file SQLite opened must be the one created above (not swapped in between).
        let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
            use std::os::unix::fs::MetadataExt;
            a.dev() == b.dev() && a.ino() == b.ino()
        };
        match (created.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) if same(&a, &b) => {}
            _ => {
                return Err(SessionError::Io(
                    path.display().to_string(),
                    std::io::Error::other("the file was replaced while it was being created"),
                ));
            }
        }
        drop(created);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let probes = schema(&conn, script, kernel).map_err(sql)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(65_536);
        let display = path.display().to_string();
        let thread = std::thread::spawn(move || {
            writer(conn, probes, rx).map_err(|e| SessionError::Sqlite(display, e))
        });
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
            started: Instant::now(),
        })
    }

    /// Nanoseconds since the recording started (the `ts` of records).
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Queues an item unless the writer is 64 K items behind; returns whether it was queued.
    /// For callers that must never block (the UI thread).
    pub fn try_write(&self, item: Item) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.try_send(item).is_ok())
    }

    /// Queues an item; blocks when the writer is 64 K items behind.
    pub fn write(&self, item: Item) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(item);
        }
    }

    /// Flushes and closes the file; returns the number of records written.
    pub fn finish(mut self) -> Result<u64, SessionError> {
        self.tx.take();
        match self.thread.take() {
            Some(t) => t.join().unwrap_or(Ok(0)),
            None => Ok(0),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn schema(conn: &Connection, script: &Script, kernel: &str) -> rusqlite::Result<Vec<ProbeInfo>> {
    conn.execute_batch(
        "CREATE TABLE nubpf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE nubpf_probes (
             id INTEGER PRIMARY KEY, name TEXT NOT NULL, table_name TEXT NOT NULL,
             kind TEXT NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,
             pipeline TEXT, pipeline_start INTEGER, pipeline_end INTEGER, columns TEXT NOT NULL);
         CREATE TABLE nubpf_aggregates (
             at INTEGER NOT NULL, probe TEXT NOT NULL, aggregation TEXT NOT NULL,
             kind TEXT NOT NULL, key TEXT NOT NULL, bucket INTEGER, bucket_label TEXT,
             value INTEGER NOT NULL);
         CREATE TABLE nubpf_lost (at INTEGER NOT NULL, probe TEXT NOT NULL, lost INTEGER NOT NULL);
         CREATE TABLE nubpf_aggregations (
             probe TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
             min INTEGER, max INTEGER, step INTEGER);",
    )?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (k, v) in [
        ("format_version", FORMAT_VERSION.to_string()),
        ("nubpf_version", env!("CARGO_PKG_VERSION").to_string()),
        ("kernel", kernel.to_string()),
        ("host", host.trim().to_string()),
        ("started_unix", started.to_string()),
        ("script", script.source.clone()),
    ] {
        conn.execute("INSERT INTO nubpf_meta VALUES (?1, ?2)", params![k, v])?;
    }
    let mut probes = Vec::new();
    for (i, p) in script.probes.iter().enumerate() {
        let table = table_name(&p.name);
        // The union of every emit's columns, in first-seen order.
        let mut columns: Vec<(String, Ty)> = Vec::new();
        let mut events = HashMap::new();
        for e in script.compiled.events.iter().filter(|e| e.probe == i) {
            let mut indices = Vec::new();
            for f in &e.record.fields {
                let at = match columns.iter().position(|(n, _)| *n == f.name) {
                    Some(at) => at,
                    None => {
                        columns.push((f.name.clone(), f.ty));
                        columns.len() - 1
                    }
                };
                indices.push(at);
            }
            events.insert(e.id, indices);
        }
        let column_sql: Vec<String> = columns
            .iter()
            .map(|(n, t)| format!("\"{}\" {}", n.replace('"', "\"\""), column_sql_type(*t)))
            .collect();
        let mut ddl =
            format!("CREATE TABLE \"{table}\" (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL");
        for c in &column_sql {
            ddl.push_str(", ");
            ddl.push_str(c);
        }
        ddl.push(')');
        conn.execute(&ddl, [])?;
        let columns_json = columns
            .iter()
            .map(|(n, t)| format!("[{:?},{:?}]", n, column_sql_type(*t)))
            .collect::<Vec<_>>()
            .join(",");
        let (pipeline, start, end) = match &p.pipeline {
            Some((text, span)) => (Some(text.clone()), Some(span.start), Some(span.end)),
            None => (None, None, None),
        };
        let source = script
            .source
            .get(p.span.start as usize..p.span.end as usize)
            .unwrap_or("");
        conn.execute(
            "INSERT INTO nubpf_probes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                i as i64,
                p.name,
                table,
                p.kind.word(),
                p.attach.describe(),
                source,
                pipeline,
                start,
                end,
                format!("[{columns_json}]")
            ],
        )?;
        for a in script.compiled.aggregations.iter().filter(|a| a.probe == i) {
            let (min, max, step) = match a.kind {
                nubpf_ebpf::ir::AggKind::Lhist { min, max, step } => {
                    (Some(min), Some(max), Some(step))
                }
                _ => (None, None, None),
            };
            let key = a
                .key
                .fields
                .iter()
                .map(|f| format!("{:?}", f.name))
                .collect::<Vec<_>>()
                .join(",");
            conn.execute(
                "INSERT INTO nubpf_aggregations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    table,
                    a.name,
                    a.kind.name(),
                    format!("[{key}]"),
                    min,
                    max,
                    step
                ],
            )?;
        }
        probes.push(ProbeInfo {
            table,
            events,
            columns,
        });
    }
    Ok(probes)
}

fn sql_value(v: &Decoded) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Decoded::Int(i) => S::Integer(*i),
        Decoded::UInt(u) => match i64::try_from(*u) {
            Ok(i) => S::Integer(i),
            Err(_) => S::Text(format!("{u:#x}")),
        },
        Decoded::Bool(b) => S::Integer(*b as i64),
        Decoded::Str(s) => S::Text(s.clone()),
    }
}

fn writer(conn: Connection, probes: Vec<ProbeInfo>, rx: Receiver<Item>) -> rusqlite::Result<u64> {
    let mut conn = conn;
    let inserts: Vec<String> = probes
        .iter()
        .map(|p| {
            let marks: Vec<String> = (0..p.columns.len() + 1)
                .map(|i| format!("?{}", i + 1))
                .collect();
            let names: Vec<String> = p
                .columns
                .iter()
                .map(|(n, _)| format!("\"{}\"", n.replace('"', "\"\"")))
                .collect();
            format!(
                "INSERT INTO \"{}\" (ts{}{}) VALUES ({})",
                p.table,
                if names.is_empty() { "" } else { ", " },
                names.join(", "),
                marks.join(", ")
            )
        })
        .collect();
    let mut written = 0u64;
    let mut open = true;
    while open {
        // One transaction per batch: whatever arrived within 200 ms, or 100 K items.
        let first = match rx.recv() {
            Ok(item) => item,
            Err(_) => break,
        };
        let deadline = Instant::now() + Duration::from_millis(200);
        let tx = conn.transaction()?;
        {
            let mut statements = Vec::with_capacity(inserts.len());
            for sql in &inserts {
                statements.push(tx.prepare_cached(sql)?);
            }
            let mut item = Some(first);
            let mut n = 0;
            while let Some(it) = item.take() {
                match it {
                    Item::Record {
                        probe,
                        columns,
                        ts,
                        values,
                    } => {
                        if let (Some(p), Some(stmt)) =
                            (probes.get(probe), statements.get_mut(probe))
                        {
                            let mut row = vec![rusqlite::types::Value::Null; p.columns.len() + 1];
                            row[0] = rusqlite::types::Value::Integer(ts as i64);
                            match &columns {
                                Columns::Event(id) => {
                                    if let Some(indices) = p.events.get(id) {
                                        for (at, v) in indices.iter().zip(&values) {
                                            row[at + 1] = sql_value(v);
                                        }
                                    }
                                }
                                Columns::Named(names) => {
                                    for (name, v) in names.iter().zip(&values) {
                                        if let Some(at) =
                                            p.columns.iter().position(|(n, _)| n == name)
                                        {
                                            row[at + 1] = sql_value(v);
                                        }
                                    }
                                }
                            }
                            stmt.execute(rusqlite::params_from_iter(row))?;
                            written += 1;
                        }
                    }
                    Item::Aggregates {
                        at,
                        probe,
                        snapshots,
                    } => {
                        let name = probes.get(probe).map_or("", |p| p.table.as_str());
                        let mut stmt = tx.prepare_cached(
                            "INSERT INTO nubpf_aggregates VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )?;
                        for s in &snapshots {
                            for e in &s.entries {
                                let key = e
                                    .key
                                    .iter()
                                    .map(|v| format!("{:?}", v.to_string()))
                                    .collect::<Vec<_>>()
                                    .join(",");
                                stmt.execute(params![
                                    at as i64,
                                    name,
                                    s.name,
                                    s.kind.name(),
                                    format!("[{key}]"),
                                    e.bucket.map(|b| b as i64),
                                    e.bucket
                                        .map(|b| crate::app::aggregates::bucket_label(s.kind, b)),
                                    i64::try_from(e.value.value()).unwrap_or(i64::MAX),
                                ])?;
                            }
                        }
                    }
                    Item::Lost { at, probe, lost } => {
                        let name = probes.get(probe).map_or("", |p| p.table.as_str());
                        tx.execute(
                            "INSERT INTO nubpf_lost VALUES (?1, ?2, ?3)",
                            params![at as i64, name, lost as i64],
                        )?;
                    }
                }
                n += 1;
                if n >= 100_000 {
                    break;
                }
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(next) => item = Some(next),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
        }
        tx.commit()?;
    }
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    Ok(written)
}
