//! Plots as SVG or PNG with plotters: a histogram (the last snapshot of a recorded `hist` or
//! `lhist`), or a probe's events per second. Text uses a bundled font, so PNG works without
//! fontconfig.

use std::path::Path;

use plotters::prelude::*;

use super::files::write_private;
use super::{Recording, SessionError};

/// What to plot.
#[derive(Clone, Debug)]
pub enum PlotData {
    /// `(bucket label, count)` bars.
    Histogram {
        title: String,
        bars: Vec<(String, u64)>,
    },
    /// `(seconds since start, events per second)` points.
    Rate {
        title: String,
        points: Vec<(f64, f64)>,
    },
}

static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

/// Makes the bundled font plotters' "sans-serif" (idempotent).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bundled font parses; a failure would only lose the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A histogram key as the recording stores it: `["bash"]`, `["bash","12"]` for `bash,12`.
fn stored_key(key: &str) -> String {
    let parts: Vec<String> = key.split(',').map(|v| format!("{:?}", v.trim())).collect();
    format!("[{}]", parts.join(","))
}

/// The data to plot for `probe` of a recording: its histogram when it has one
/// (`aggregation` picks among several; `key` one key of a keyed histogram, whose keys are
/// otherwise added up), else its events per second.
pub fn data(
    rec: &Recording,
    probe: &str,
    aggregation: Option<&str>,
    key: Option<&str>,
) -> Result<PlotData, SessionError> {
    let p = rec.probe(probe)?.clone();
    let sql = |e| SessionError::Sqlite(rec.path.clone(), e);
    let key = key.map(stored_key);
    let last_snapshot = "kind IN ('hist', 'lhist') AND (?2 IS NULL OR aggregation = ?2)
               AND at = (SELECT max(at) FROM nubpf_aggregates WHERE probe = ?1)";
    let keys: Vec<String> = rec
        .conn
        .prepare(&format!(
            "SELECT DISTINCT key FROM nubpf_aggregates WHERE probe = ?1 AND {last_snapshot} ORDER BY key"
        ))
        .map_err(sql)?
        .query_map(rusqlite::params![p.table, aggregation], |r| r.get(0))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    if let Some(k) = &key
        && !keys.contains(k)
    {
        return Err(SessionError::NoSuchKey {
            path: rec.path.clone(),
            probe: p.name.clone(),
            key: k.clone(),
            known: if keys.is_empty() {
                "none".into()
            } else {
                keys.join(" ")
            },
        });
    }
    let mut stmt = rec
        .conn
        .prepare(&format!(
            "SELECT aggregation, bucket_label, sum(value), kind, bucket FROM nubpf_aggregates
             WHERE probe = ?1 AND {last_snapshot} AND (?3 IS NULL OR key = ?3)
             GROUP BY aggregation, bucket ORDER BY aggregation, bucket"
        ))
        .map_err(sql)?;
    type Row = (String, String, i64, String, i64);
    let rows: Vec<Row> = stmt
        .query_map(rusqlite::params![p.table, aggregation, key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    let which = match (&key, keys.len()) {
        (Some(k), _) => format!(" {k}"),
        (None, n) if n > 1 => format!(" (all {n} keys added up)"),
        _ => String::new(),
    };
    if let Some((name, ..)) = rows.first() {
        let name = name.clone();
        let mine: Vec<&Row> = rows.iter().filter(|r| r.0 == name).collect();
        let log2 = mine.first().is_some_and(|r| r.3 == "hist");
        let bars = if log2 {
            // Power-of-two buckets: the gaps are filled with zeros so the shape reads right.
            let first = mine.first().map_or(0, |r| r.4);
            let last = mine.last().map_or(0, |r| r.4);
            (first..=last)
                .map(|b| {
                    let count = mine
                        .iter()
                        .find(|r| r.4 == b)
                        .map_or(0, |r| r.2.max(0) as u64);
                    let label = crate::app::aggregates::bucket_label(
                        nubpf_ebpf::ir::AggKind::Hist,
                        b.max(0) as u64,
                    );
                    (label, count)
                })
                .collect()
        } else {
            mine.iter()
                .map(|r| (r.1.clone(), r.2.max(0) as u64))
                .collect()
        };
        return Ok(PlotData::Histogram {
            title: format!("{} @{name}{which}", p.name),
            bars,
        });
    }
    let mut stmt = rec
        .conn
        .prepare(&format!(
            "SELECT ts FROM \"{}\" ORDER BY seq",
            p.table.replace('"', "\"\"")
        ))
        .map_err(sql)?;
    let ts: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    if ts.is_empty() {
        return Err(SessionError::Empty {
            path: rec.path.clone(),
            probe: p.name.clone(),
        });
    }
    let last = ts.iter().copied().max().unwrap_or(0).max(0) as f64 / 1e9;
    // Bins of a second, or a tenth for short recordings.
    let bin = if last < 10.0 { 0.1 } else { 1.0 };
    let mut counts = vec![0u64; (last / bin) as usize + 1];
    for t in ts {
        let i = ((t.max(0) as f64 / 1e9) / bin) as usize;
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    Ok(PlotData::Rate {
        title: format!("{} events per second", p.name),
        points: counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64 * bin, *c as f64 / bin))
            .collect(),
    })
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    data: &PlotData,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match data {
        PlotData::Histogram { title, bars } => {
            let max = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 24))
                .margin(12)
                .x_label_area_size(48)
                .y_label_area_size(70)
                .build_cartesian_2d(
                    (0..bars.len().saturating_sub(1).max(1)).into_segmented(),
                    0u64..max + max / 10 + 1,
                )
                .map_err(|e| e.to_string())?;
            let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .y_desc("count")
                .x_desc("bucket")
                .x_labels(bars.len().min(40))
                .x_label_formatter(&|x| match x {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                        labels.get(*i).cloned().unwrap_or_default()
                    }
                    SegmentValue::Last => String::new(),
                })
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(
                    Histogram::vertical(&chart)
                        .style(RGBColor(40, 120, 180).filled())
                        .margin(3)
                        .data(bars.iter().enumerate().map(|(i, b)| (i, b.1))),
                )
                .map_err(|e| e.to_string())?;
        }
        PlotData::Rate { title, points } => {
            let max_x = points.last().map_or(1.0, |p| p.0).max(0.1);
            let max_y = points.iter().map(|p| p.1).fold(1.0, f64::max);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 24))
                .margin(12)
                .x_label_area_size(48)
                .y_label_area_size(80)
                .build_cartesian_2d(0.0..max_x, 0.0..max_y * 1.1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("seconds")
                .y_desc("events/s")
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    RGBColor(40, 120, 180).stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

/// Renders `data` as SVG text.
pub fn svg(data: &PlotData, size: (u32, u32)) -> Result<String, String> {
    register_font();
    let mut out = String::new();
    draw(
        SVGBackend::with_string(&mut out, size).into_drawing_area(),
        data,
    )?;
    Ok(out)
}

/// Renders `data` as PNG bytes.
pub fn png(data: &PlotData, size: (u32, u32)) -> Result<Vec<u8>, String> {
    register_font();
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area(),
        data,
    )?;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, size.0, size.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Writes a plot to a new file; the format follows the extension (`.svg` or `.png`).
pub fn write(data: &PlotData, to: &Path) -> Result<(), String> {
    let size = (1000, 600);
    let bytes = match to.extension().and_then(|e| e.to_str()) {
        Some("svg") => svg(data, size)?.into_bytes(),
        Some("png") => png(data, size)?,
        _ => return Err(format!("`{}`: use a .svg or .png name", to.display())),
    };
    write_private(to, &bytes).map_err(|e| e.to_string())
}
