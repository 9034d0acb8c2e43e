//! Builds the views' [`Screen`] model from the workbench state and draws a frame.

use ratatui::Frame;

use super::state::{App, Focus, ProbeState, TabKind};
use crate::app::aggregates::{self, histogram_groups, is_histogram, sorted_entries};
use crate::views::{self, AggSection, DiagLine, MenuModel, Output, ProbeRow, Screen, TableModel};

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

fn aggregation_sections(p: &super::state::ProbeView) -> Vec<AggSection> {
    let mut sections = Vec::new();
    for (layout, snapshot) in &p.aggregations {
        let keys = aggregates::key_columns(layout);
        if is_histogram(layout.kind) {
            for (key, buckets) in histogram_groups(snapshot) {
                let key_text: Vec<String> = keys
                    .iter()
                    .zip(&key)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let title = if key_text.is_empty() {
                    format!("@{}", snapshot.name)
                } else {
                    format!("@{}[{}]", snapshot.name, key_text.join(", "))
                };
                sections.push(AggSection::Histogram {
                    title,
                    buckets: buckets
                        .into_iter()
                        .map(|(b, c)| (aggregates::bucket_label(layout.kind, b), c))
                        .collect(),
                });
            }
            if snapshot.entries.is_empty() {
                sections.push(AggSection::Histogram {
                    title: format!("@{} (no samples yet)", snapshot.name),
                    buckets: vec![],
                });
            }
        } else {
            let mut columns = keys.clone();
            columns.push(snapshot.name.clone());
            let mut entries = sorted_entries(snapshot);
            entries.reverse();
            let rows = entries
                .into_iter()
                .map(|e| {
                    let mut r: Vec<String> = e.key.iter().map(|v| v.to_string()).collect();
                    r.push(e.value.value().to_string());
                    r
                })
                .collect();
            sections.push(AggSection::Table {
                title: format!("@{}", snapshot.name),
                columns,
                rows,
            });
        }
    }
    sections
}

/// Draws the whole workbench and records where the panes went.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let tabs = app.tabs();
    let text = app.editor.text().to_string();
    let diagnostics: Vec<DiagLine> = app
        .diagnostics
        .iter()
        .map(|d| {
            let (line, col) = line_col(&text, d.span.start as usize);
            DiagLine {
                error: d.is_error(),
                place: format!("{line}:{col}"),
                message: d.message.clone(),
                help: d.help.first().cloned(),
            }
        })
        .collect();
    let probes: Vec<ProbeRow> = app
        .probes
        .iter()
        .map(|p| ProbeRow {
            name: p.name.clone(),
            kind: p.kind.clone(),
            target: p.target.clone(),
            state: p.state.label().to_string(),
            hits: p.hits,
            rate: p.rate,
            drops: p.drops,
            insns: p.insns,
            attach_ms: p.attach_time.map(|t| t.as_secs_f64() * 1e3),
            error: matches!(p.state, ProbeState::Error(_)),
        })
        .collect();
    let tab = tabs.get(app.tab.min(tabs.len().saturating_sub(1))).cloned();
    let output = match &tab {
        None => Output::Empty(if app.status.privileges.is_some() {
            "records and aggregations appear here once a probe is attached (needs root)".into()
        } else {
            "records and aggregations appear here once a probe is attached (F5)".into()
        }),
        Some(t) => {
            let p = &app.probes[t.probe];
            match t.kind {
                TabKind::Records if p.rows.columns.is_empty() => Output::Empty(match &p.state {
                    ProbeState::Error(e) => format!("error: {e}"),
                    _ => "no records yet".into(),
                }),
                TabKind::Records => Output::Table(TableModel {
                    columns: &p.rows.columns,
                    rows: &p.rows.rows,
                    widths: &p.rows.widths,
                    scroll: app.scroll,
                    paused: app.paused,
                    total: p.rows.total,
                    discarded: p.rows.discarded,
                }),
                TabKind::Aggregations => Output::Aggregations(aggregation_sections(p), app.scroll),
                TabKind::Pipeline => Output::Pipeline {
                    text: match p.pipeline_window {
                        Some((used, left_out)) => format!(
                            "{}   · over the newest {used} records, {left_out} older left out",
                            p.pipeline.as_deref().unwrap_or_default()
                        ),
                        None => p.pipeline.clone().unwrap_or_default(),
                    },
                    table: p.pipeline_result.as_ref().map(|r| TableModel {
                        columns: &r.columns,
                        rows: &r.rows,
                        widths: &r.widths,
                        scroll: 0,
                        paused: false,
                        total: r.total,
                        discarded: 0,
                    }),
                    error: p.pipeline_error.clone(),
                },
            }
        }
    };
    let (rate, drops) = app.totals();
    let title = app.title.clone().unwrap_or_else(|| {
        app.file
            .as_ref()
            .map_or("script (unsaved)".to_string(), |f| f.display().to_string())
    });
    let screen = Screen {
        title,
        privileges: app
            .status
            .privileges
            .as_ref()
            .map_or("root".into(), |_| "no privileges".into()),
        can_attach: app.status.privileges.is_none(),
        kernel: app.status.kernel.clone(),
        events_per_sec: rate,
        drops,
        keymap: app.editor.mode_name().to_string(),
        compile: {
            let compile = match (app.compiling, app.compile_time) {
                (true, _) => "compiling…".into(),
                (false, Some(t)) => format!("compiled in {:.2}ms", t.as_secs_f64() * 1e3),
                (false, None) => String::new(),
            };
            match (&app.recording, &app.replay) {
                (Some(path), _) => format!("● REC {} │ {compile}", path.display()),
                (None, Some(r)) => format!(
                    "{} replay {:.1}s / {:.1}s at {}",
                    if r.paused { "⏸" } else { "▶" },
                    r.position as f64 / 1e9,
                    r.duration as f64 / 1e9,
                    r.speed
                        .map_or("full speed".to_string(), |s| format!("{s}×")),
                ),
                (None, None) => compile,
            }
        },
        probes,
        selected_probe: app.selected_probe,
        diagnostics,
        compiling: app.compiling,
        tabs: tabs.iter().map(|t| t.title.clone()).collect(),
        tab: app.tab,
        output,
        focus: match app.focus {
            Focus::Editor => views::Focus::Editor,
            Focus::Probes => views::Focus::Probes,
            Focus::Output => views::Focus::Output,
        },
        help: app.help,
        replay: app.replay.is_some(),
        notice: app.notice.as_ref().map(|(n, _)| n.clone()),
        menu: app.editor.menu().map(|m| MenuModel {
            items: m
                .items
                .iter()
                .map(|i| (i.value.clone(), i.description.clone()))
                .collect(),
            selected: m.selected,
        }),
    };
    let focused = app.focus == Focus::Editor;
    let editor = &mut app.editor;
    let areas = views::draw(frame, &screen, &mut |area, buf| {
        editor.render(area, buf, focused)
    });
    app.regions = super::state::Regions {
        editor: areas.editor,
        probes: areas.probes,
        output: areas.output,
        tabs: areas.tabs,
    };
}
