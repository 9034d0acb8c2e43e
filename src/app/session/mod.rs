//! Sessions: recording what probes produce into one SQLite file, replaying it without root,
//! exporting the probes as a `.nu` script and tables as CSV, JSON or NUON, and plotting.

pub mod export;
pub mod files;
pub mod playback;
pub mod plot;
pub mod record;
pub mod replay;

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use nubpf_ebpf::ir::Ty;

/// The recording format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Failures reading or writing a session file.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The target exists (or is a symlink): recordings never overwrite or follow links.
    #[error("`{0}` already exists; choose another name or remove it")]
    Exists(String),
    /// The file cannot be opened or created.
    #[error("`{0}`: {1}")]
    Io(String, #[source] std::io::Error),
    /// SQLite refused the file or a statement.
    #[error("`{0}` is not a readable nubpf recording: {1}")]
    Sqlite(String, #[source] rusqlite::Error),
    /// The file is SQLite but not a nubpf recording.
    #[error("`{0}` is not a nubpf recording (no `nubpf_meta` table)")]
    NotARecording(String),
    /// Written by a newer nubpf.
    #[error(
        "`{path}` was recorded in format {found}; this nubpf reads up to {FORMAT_VERSION} (upgrade nubpf)"
    )]
    NewerFormat { path: String, found: u32 },
    /// A probe's table is gone.
    #[error("`{path}` has no table `{table}` for probe `{probe}`")]
    MissingTable {
        path: String,
        probe: String,
        table: String,
    },
    /// Nothing to plot: the probe recorded neither records nor a histogram.
    #[error("probe `{probe}` of `{path}` recorded no records and no histogram")]
    Empty { path: String, probe: String },
    /// No histogram key of that value.
    #[error("probe `{probe}` of `{path}` has no histogram key `{key}` (it has: {known})")]
    NoSuchKey {
        path: String,
        probe: String,
        key: String,
        known: String,
    },
    /// No probe of that name.
    #[error("`{path}` has no probe `{probe}` (it has: {known})")]
    NoSuchProbe {
        path: String,
        probe: String,
        known: String,
    },
}

/// The SQL table name of a probe: its name, with only `[A-Za-z0-9_]`.
pub fn table_name(probe: &str) -> String {
    probe
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// SQLite column type of a field.
pub fn column_sql_type(ty: Ty) -> &'static str {
    match ty {
        Ty::Int(_) | Ty::Bool => "INTEGER",
        Ty::Str { .. } => "TEXT",
    }
}

/// One recorded probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedProbe {
    pub id: i64,
    pub name: String,
    pub table: String,
    pub kind: String,
    pub target: String,
    pub source: String,
    pub pipeline: Option<(String, u32, u32)>,
    /// `(name, SQL type)`.
    pub columns: Vec<(String, String)>,
}

/// An opened recording, read-only.
pub struct Recording {
    pub path: String,
    pub conn: Connection,
    pub meta: std::collections::BTreeMap<String, String>,
    pub probes: Vec<RecordedProbe>,
}

fn parse_columns(json: &str) -> Vec<(String, String)> {
    // Written by `record` as `[["name","TYPE"],...]` with Rust string escapes.
    let mut out = Vec::new();
    let mut rest = json;
    while let Some(start) = rest.find("[\"") {
        rest = &rest[start + 1..];
        let mut fields = Vec::new();
        for _ in 0..2 {
            let Some(open) = rest.find('"') else { break };
            let mut s = String::new();
            let mut chars = rest[open + 1..].char_indices();
            let mut end = 0;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            s.push(n);
                        }
                    }
                    '"' => {
                        end = open + 1 + i + 1;
                        break;
                    }
                    c => s.push(c),
                }
            }
            fields.push(s);
            rest = &rest[end..];
        }
        if let [n, t] = &fields[..] {
            out.push((n.clone(), t.clone()));
        }
    }
    out
}

impl Recording {
    /// Opens a recording read-only and checks it: SQLite, a nubpf recording, a format this
    /// build reads, every probe table present. The file is never modified.
    pub fn open(path: &Path) -> Result<Recording, SessionError> {
        let display = path.display().to_string();
        if !path.exists() {
            return Err(SessionError::Io(
                display,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let sql = |e| SessionError::Sqlite(display.clone(), e);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        let has_meta: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'nubpf_meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(sql)?
            > 0;
        if !has_meta {
            return Err(SessionError::NotARecording(display));
        }
        let mut meta = std::collections::BTreeMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT key, value FROM nubpf_meta")
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql)?;
            for row in rows {
                let (k, v) = row.map_err(sql)?;
                meta.insert(k, v);
            }
        }
        let version: u32 = meta
            .get("format_version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if version > FORMAT_VERSION {
            return Err(SessionError::NewerFormat {
                path: display,
                found: version,
            });
        }
        if version == 0 {
            return Err(SessionError::NotARecording(display));
        }
        let mut probes = Vec::new();
        {
            let mut stmt = conn
                .prepare("SELECT id, name, table_name, kind, target, source, pipeline, pipeline_start, pipeline_end, columns FROM nubpf_probes ORDER BY id")
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| {
                    let pipeline: Option<String> = r.get(6)?;
                    let start: Option<i64> = r.get(7)?;
                    let end: Option<i64> = r.get(8)?;
                    Ok(RecordedProbe {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        table: r.get(2)?,
                        kind: r.get(3)?,
                        target: r.get(4)?,
                        source: r.get(5)?,
                        pipeline: match (pipeline, start, end) {
                            (Some(p), Some(s), Some(e)) => Some((p, s as u32, e as u32)),
                            _ => None,
                        },
                        columns: parse_columns(&r.get::<_, String>(9)?),
                    })
                })
                .map_err(sql)?;
            for row in rows {
                probes.push(row.map_err(sql)?);
            }
        }
        for p in &probes {
            let exists: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [&p.table],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if exists == 0 {
                return Err(SessionError::MissingTable {
                    path: display,
                    probe: p.name.clone(),
                    table: p.table.clone(),
                });
            }
        }
        Ok(Recording {
            path: display,
            conn,
            meta,
            probes,
        })
    }

    pub fn script(&self) -> &str {
        self.meta.get("script").map_or("", String::as_str)
    }

    pub fn probe(&self, name: &str) -> Result<&RecordedProbe, SessionError> {
        self.probes
            .iter()
            .find(|p| p.name == name || p.table == name)
            .ok_or_else(|| SessionError::NoSuchProbe {
                path: self.path.clone(),
                probe: name.to_string(),
                known: self
                    .probes
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists_round_trip() {
        let json = format!(
            "[[{:?},{:?}],[{:?},{:?}]]",
            "pid", "INTEGER", "we\"ird", "TEXT"
        );
        assert_eq!(
            parse_columns(&json),
            vec![
                ("pid".into(), "INTEGER".into()),
                ("we\"ird".into(), "TEXT".into())
            ]
        );
        assert_eq!(table_name("sys_enter_openat_2"), "sys_enter_openat_2");
        assert_eq!(table_name("a-b.c"), "a_b_c");
    }
}
