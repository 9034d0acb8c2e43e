//! `nubpf-tui export`: a recording's probes as a readable `.nu` script (which `run` runs and
//! the workbench opens), or one probe's table as CSV, JSON or NUON.

use std::io::Write;
use std::path::Path;

use nu_protocol::{Span as NuSpan, Value};

use super::files::write_private;
use super::{Recording, SessionError};
use crate::app::output;

/// `YYYY-MM-DD HH:MM UTC` for a Unix time (civil-from-days, no time zone database).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// The script of a recording with a header saying when and where it was recorded.
pub fn script_text(rec: &Recording) -> String {
    let get = |k: &str| rec.meta.get(k).cloned().unwrap_or_else(|| "unknown".into());
    let when = get("started_unix")
        .parse()
        .map(utc)
        .unwrap_or_else(|_| "unknown".into());
    let mut out = format!(
        "# nubpf session recorded {when} on host `{}`, kernel {}, nubpf {}\n",
        get("host"),
        get("kernel"),
        get("nubpf_version")
    );
    let names: Vec<&str> = rec.probes.iter().map(|p| p.name.as_str()).collect();
    out.push_str(&format!("# probes: {}\n", names.join(", ")));
    out.push_str(
        "# run it: sudo nubpf-tui run <this file>; open it: sudo nubpf-tui <this file>\n\n",
    );
    out.push_str(rec.script().trim_end());
    out.push('\n');
    out
}

/// Writes the recording's probes as a `.nu` script to a new file.
pub fn export_script(rec: &Recording, to: &Path) -> Result<(), SessionError> {
    write_private(to, script_text(rec).as_bytes())
}

/// Table export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    Csv,
    Json,
    Nuon,
}

fn csv_cell(v: &Value) -> String {
    let s = match v {
        Value::String { val, .. } => val.clone(),
        other => other.to_expanded_string(",", &nu_protocol::Config::default()),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One probe's records in a table format.
pub fn table_text(
    rec: &Recording,
    probe: &str,
    format: TableFormat,
) -> Result<Vec<u8>, SessionError> {
    let p = rec.probe(probe)?.clone();
    let index = rec
        .probes
        .iter()
        .position(|x| x.name == p.name)
        .unwrap_or(0);
    let mut rows = Vec::new();
    super::replay::for_each_row(rec, |i, _, v| {
        if i == index {
            rows.push(v);
        }
        true
    })
    .map_err(|e| SessionError::Sqlite(rec.path.clone(), e))?;
    let mut out = Vec::new();
    match format {
        TableFormat::Csv => {
            let header: Vec<String> = p
                .columns
                .iter()
                .map(|(n, _)| csv_cell(&Value::string(n, NuSpan::unknown())))
                .collect();
            let _ = writeln!(out, "{}", header.join(","));
            for r in &rows {
                let cells: Vec<String> = p
                    .columns
                    .iter()
                    .map(|(n, _)| {
                        r.get_data_by_key(n)
                            .map(|v| csv_cell(&v))
                            .unwrap_or_default()
                    })
                    .collect();
                let _ = writeln!(out, "{}", cells.join(","));
            }
        }
        TableFormat::Json => {
            let _ = output::write_json_value(&mut out, &Value::list(rows, NuSpan::unknown()));
            out.push(b'\n');
        }
        TableFormat::Nuon => {
            out.extend(output::nuon_line(&Value::list(rows, NuSpan::unknown())).into_bytes());
            out.push(b'\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_796_310_000), "2026-12-03 15:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
