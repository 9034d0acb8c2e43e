//! The workbench's ratatui widgets, drawn from view models only: no aya, no IR, no Nushell
//! types here. `app::workbench` builds a [`Screen`] from its state each frame.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

mod row;
pub use row::{Cells, Row};

/// Which pane has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Editor,
    Probes,
    Output,
}

/// One line of the probes panel.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRow {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub state: String,
    pub hits: u64,
    pub rate: f64,
    pub drops: u64,
    pub insns: usize,
    pub attach_ms: Option<f64>,
    pub error: bool,
}

/// One diagnostic line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagLine {
    pub error: bool,
    /// `line:col` in the script.
    pub place: String,
    pub message: String,
    pub help: Option<String>,
}

/// A table of strings.
pub struct TableModel<'a> {
    pub columns: &'a [String],
    pub rows: &'a VecDeque<Row>,
    pub widths: &'a [u16],
    /// Rows scrolled up from the newest; 0 follows.
    pub scroll: usize,
    pub paused: bool,
    pub total: u64,
    pub discarded: u64,
}

/// One aggregation section.
pub enum AggSection {
    Histogram {
        title: String,
        /// `(label, count)` in bucket order.
        buckets: Vec<(String, u64)>,
    },
    Table {
        title: String,
        columns: Vec<String>,
        /// Sorted by value, largest first.
        rows: Vec<Vec<String>>,
    },
}

pub enum Output<'a> {
    Table(TableModel<'a>),
    /// Sections and the number of lines scrolled down.
    Aggregations(Vec<AggSection>, usize),
    Pipeline {
        text: String,
        table: Option<TableModel<'a>>,
        error: Option<String>,
    },
    Empty(String),
}

/// The open completion menu.
pub struct MenuModel {
    pub items: Vec<(String, String)>,
    pub selected: usize,
}

/// Everything a frame shows.
pub struct Screen<'a> {
    pub title: String,
    /// `root`, or what privilege is missing.
    pub privileges: String,
    pub can_attach: bool,
    pub kernel: String,
    pub events_per_sec: f64,
    pub drops: u64,
    pub keymap: String,
    pub compile: String,
    pub probes: Vec<ProbeRow>,
    pub selected_probe: usize,
    pub diagnostics: Vec<DiagLine>,
    /// A compile of the current text is running.
    pub compiling: bool,
    pub tabs: Vec<String>,
    pub tab: usize,
    pub output: Output<'a>,
    pub focus: Focus,
    pub help: bool,
    /// A recording is playing.
    pub replay: bool,
    pub notice: Option<String>,
    pub menu: Option<MenuModel>,
}

/// Where the panes went, for mouse hits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Areas {
    pub editor: Rect,
    pub probes: Rect,
    pub diagnostics: Rect,
    pub tabs: Rect,
    pub output: Rect,
}

fn focused_block(title: &str, focused: bool) -> Block<'_> {
    let style = if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ))
}

/// Splits the screen: status, editor and probes (side by side from 100 columns, stacked
/// below), diagnostics, tabs and output, footer.
pub fn layout(area: Rect, diagnostics: usize, probes: usize) -> Areas {
    let diag_height = (diagnostics.clamp(1, 4) as u16) + 2;
    let wide = area.width >= 100;
    let probes_height = (probes.max(1) as u16 + 3).min(6);
    let mut constraints = vec![
        Constraint::Length(1),
        Constraint::Percentage(if wide { 45 } else { 30 }),
    ];
    if !wide {
        constraints.push(Constraint::Length(probes_height));
    }
    constraints.extend([
        Constraint::Length(diag_height),
        Constraint::Min(4),
        Constraint::Length(1),
    ]);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints(constraints)
        .split(area);
    let (editor, probes, rest) = if wide {
        let top = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(55), Constraint::Percentage(45)])
            .split(rows[1]);
        (top[0], top[1], 2)
    } else {
        (rows[1], rows[2], 3)
    };
    let out = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(1), Constraint::Min(3)])
        .split(rows[rest + 1]);
    Areas {
        editor,
        probes,
        diagnostics: rows[rest],
        tabs: out[0],
        output: out[1],
    }
}

/// Draws the editor's text into an area and returns the cursor position, if focused.
pub type EditorPainter<'e> = dyn FnMut(Rect, &mut Buffer) -> Option<(u16, u16)> + 'e;

/// Draws a frame. `editor` draws the editor's text into the inner area and returns the
/// cursor position, if the editor has focus.
pub fn draw(frame: &mut Frame, screen: &Screen, editor: &mut EditorPainter) -> Areas {
    let area = frame.area();
    let areas = layout(area, screen.diagnostics.len(), screen.probes.len());
    let buf = frame.buffer_mut();
    status_bar(screen, Rect::new(area.x, area.y, area.width, 1), buf);

    let block = focused_block(&screen.title, screen.focus == Focus::Editor);
    let inner = block.inner(areas.editor);
    ratatui::widgets::Widget::render(block, areas.editor, buf);
    let cursor = editor(inner, buf);
    if let (Some(menu), Some((x, y))) = (&screen.menu, cursor) {
        completion_menu(menu, x, y, area, buf);
    }

    probes_panel(screen, areas.probes, buf);
    diagnostics(screen, areas.diagnostics, buf);
    tabs(screen, areas.tabs, buf);
    output(screen, areas.output, buf);
    footer(
        screen,
        Rect::new(area.x, area.bottom().saturating_sub(1), area.width, 1),
        buf,
    );
    if screen.help {
        help_overlay(area, buf);
    }
    if let Some((x, y)) = cursor {
        frame.set_cursor_position((x, y));
    }
    areas
}

fn status_bar(s: &Screen, area: Rect, buf: &mut Buffer) {
    let privileges = if s.can_attach {
        Span::styled(
            format!(" {} ", s.privileges),
            Style::default().fg(Color::Black).bg(Color::Green),
        )
    } else {
        Span::styled(
            format!(" {} ", s.privileges),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        )
    };
    let line = Line::from(vec![
        Span::styled(
            " nubpf ",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        privileges,
        Span::raw(format!(" kernel {} ", s.kernel)),
        Span::raw(format!("│ {} ev/s ", human(s.events_per_sec))),
        Span::styled(
            format!("│ drops {} ", s.drops),
            if s.drops > 0 {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            },
        ),
        Span::raw(format!("│ {} │ {}", s.keymap, s.compile)),
    ]);
    buf.set_line(area.x, area.y, &line, area.width);
}

/// `12.3k`, `4.5M`.
pub fn human(v: f64) -> String {
    // `+ 0.0` turns the -0.0 of an empty sum into 0.
    let v = v + 0.0;
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn probes_panel(s: &Screen, area: Rect, buf: &mut Buffer) {
    let block = focused_block("probes", s.focus == Focus::Probes);
    let inner = block.inner(area);
    ratatui::widgets::Widget::render(block, area, buf);
    // Columns go, least useful first, as the panel narrows.
    let tier = match inner.width {
        72.. => 2,
        58.. => 1,
        _ => 0,
    };
    let row = |name: &str,
               kind: &str,
               state: &str,
               hits: &str,
               rate: &str,
               drops: &str,
               insns: &str,
               attach: &str| match tier {
        2 => format!(
            "{:<14} {:<10} {:<9} {:>8} {:>7} {:>5} {:>5} {:>7}",
            truncate(name, 14),
            truncate(kind, 10),
            state,
            hits,
            rate,
            drops,
            insns,
            attach
        ),
        1 => format!(
            "{:<14} {:<9} {:>6} {:>6} {:>5} {:>5} {:>7}",
            truncate(name, 14),
            state,
            hits,
            rate,
            drops,
            insns,
            attach
        ),
        _ => format!(
            "{:<12} {:<9} {:>6} {:>6} {:>5}",
            truncate(name, 12),
            state,
            hits,
            rate,
            drops
        ),
    };
    let header = row(
        "probe", "kind", "state", "hits", "ev/s", "drops", "insns", "attach",
    );
    buf.set_string(
        inner.x,
        inner.y,
        truncate(&header, inner.width),
        Style::default().add_modifier(Modifier::BOLD),
    );
    if s.probes.is_empty() {
        buf.set_string(
            inner.x,
            inner.y + 1,
            truncate(
                "F5 attaches the probe under the cursor, F6 all",
                inner.width,
            ),
            Style::default().fg(Color::DarkGray),
        );
    }
    for (i, p) in s.probes.iter().enumerate() {
        let y = inner.y + 1 + i as u16;
        if y >= inner.bottom() {
            break;
        }
        let style = match (
            i == s.selected_probe && s.focus == Focus::Probes,
            p.error,
            p.state.as_str(),
        ) {
            (true, _, _) => Style::default().bg(Color::DarkGray),
            (_, true, _) => Style::default().fg(Color::Red),
            (_, _, "attached") => Style::default().fg(Color::Green),
            _ => Style::default(),
        };
        let attach = p.attach_ms.map_or("-".into(), |ms| format!("{ms:.1}ms"));
        let line = row(
            &p.name,
            &p.kind,
            &p.state,
            &human(p.hits as f64),
            &human(p.rate),
            &p.drops.to_string(),
            &p.insns.to_string(),
            &attach,
        );
        buf.set_string(inner.x, y, truncate(&line, inner.width), style);
    }
    // The selected probe's target, on the panel's last line.
    if let Some(p) = s.probes.get(s.selected_probe)
        && inner.height > s.probes.len() as u16 + 1
    {
        // What the narrower tiers leave out of the table is said here.
        let mut text = if p.target.starts_with(&format!("{}:", p.kind)) {
            format!("▸ {}", p.target)
        } else {
            format!("▸ {} on {}", p.kind, p.target)
        };
        if p.insns > 0 {
            text.push_str(&format!(" · {} insns", p.insns));
        }
        if let Some(ms) = p.attach_ms {
            text.push_str(&format!(" · {ms:.1}ms to attach"));
        }
        buf.set_string(
            inner.x,
            inner.bottom() - 1,
            truncate(&text, inner.width),
            Style::default().fg(Color::DarkGray),
        );
    }
}

fn truncate(s: &str, width: u16) -> String {
    let w = width as usize;
    if s.chars().count() <= w {
        s.to_string()
    } else if w == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(w - 1).collect();
        t.push('…');
        t
    }
}

fn diagnostics(s: &Screen, area: Rect, buf: &mut Buffer) {
    let errors = s.diagnostics.iter().filter(|d| d.error).count();
    let title = if s.diagnostics.is_empty() {
        "diagnostics: none".to_string()
    } else {
        format!(
            "diagnostics: {errors} error{}",
            if errors == 1 { "" } else { "s" }
        )
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::DarkGray))
        .title(format!(" {title} "));
    let inner = block.inner(area);
    ratatui::widgets::Widget::render(block, area, buf);
    let mut lines = Vec::new();
    for d in &s.diagnostics {
        let color = if d.error { Color::Red } else { Color::Yellow };
        let mut spans = vec![
            Span::styled(format!("{} ", d.place), Style::default().fg(color)),
            Span::raw(d.message.clone()),
        ];
        if let Some(h) = &d.help {
            spans.push(Span::styled(
                format!("  help: {h}"),
                Style::default().fg(Color::DarkGray),
            ));
        }
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            "the script compiles",
            Style::default().fg(Color::Green),
        ));
    }
    ratatui::widgets::Widget::render(Paragraph::new(lines).wrap(Wrap { trim: true }), inner, buf);
}

fn tabs(s: &Screen, area: Rect, buf: &mut Buffer) {
    let mut x = area.x;
    for (i, t) in s.tabs.iter().enumerate() {
        let style = if i == s.tab {
            Style::default().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::default().fg(Color::Gray)
        };
        let label = format!(" {t} ");
        if x + label.chars().count() as u16 > area.right() {
            break;
        }
        buf.set_string(x, area.y, &label, style);
        x += label.chars().count() as u16 + 1;
    }
    if s.tabs.is_empty() {
        buf.set_string(area.x, area.y, " output ", Style::default().fg(Color::Gray));
    }
}

fn output(s: &Screen, area: Rect, buf: &mut Buffer) {
    let block = focused_block("output", s.focus == Focus::Output);
    let inner = block.inner(area);
    ratatui::widgets::Widget::render(block, area, buf);
    match &s.output {
        Output::Empty(text) => {
            // A reason may run over several lines (an attach error and its help): wrapped.
            let p = Paragraph::new(text.as_str())
                .style(Style::default().fg(Color::DarkGray))
                .wrap(Wrap { trim: false });
            ratatui::widgets::Widget::render(p, inner, buf);
        }
        Output::Table(t) => table(t, inner, buf),
        Output::Aggregations(sections, scroll) => aggregations(sections, *scroll, inner, buf),
        Output::Pipeline {
            text,
            table: t,
            error,
        } => {
            buf.set_string(
                inner.x,
                inner.y,
                truncate(&format!("| {text}"), inner.width),
                Style::default().fg(Color::Magenta),
            );
            let rest = Rect::new(
                inner.x,
                inner.y + 1,
                inner.width,
                inner.height.saturating_sub(1),
            );
            if let Some(e) = error {
                ratatui::widgets::Widget::render(
                    Paragraph::new(e.clone())
                        .style(Style::default().fg(Color::Red))
                        .wrap(Wrap { trim: false }),
                    rest,
                    buf,
                );
            } else if let Some(t) = t {
                table(t, rest, buf);
            } else {
                buf.set_string(
                    rest.x,
                    rest.y,
                    "waiting for records…",
                    Style::default().fg(Color::DarkGray),
                );
            }
        }
    }
}

/// A streaming table: the newest rows at the bottom unless scrolled.
pub fn table(t: &TableModel, area: Rect, buf: &mut Buffer) {
    if area.height < 2 {
        return;
    }
    let mut x = area.x;
    let mut cols = Vec::new();
    for (i, c) in t.columns.iter().enumerate() {
        let w = t.widths.get(i).copied().unwrap_or(8).max(3);
        if x >= area.right() {
            break;
        }
        cols.push((x, w.min(area.right() - x)));
        buf.set_string(
            x,
            area.y,
            truncate(c, w.min(area.right() - x)),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        );
        x += w + 2;
    }
    let visible = (area.height - 2) as usize;
    let end = t.rows.len().saturating_sub(t.scroll);
    let start = end.saturating_sub(visible);
    for (line, row) in t.rows.range(start..end).enumerate() {
        let y = area.y + 1 + line as u16;
        for ((x, w), cell) in cols.iter().zip(row.cells()) {
            buf.set_string(*x, y, truncate(cell, *w), Style::default());
        }
    }
    let mode = if t.paused {
        "paused"
    } else if t.scroll == 0 {
        "following"
    } else {
        "scrolled"
    };
    let info = format!(
        "{} rows shown of {} received{} · {mode}",
        t.rows.len(),
        t.total,
        if t.discarded > 0 {
            format!(", {} discarded", t.discarded)
        } else {
            String::new()
        }
    );
    buf.set_string(
        area.x,
        area.bottom() - 1,
        truncate(&info, area.width),
        Style::default().fg(Color::DarkGray),
    );
}

fn aggregations(sections: &[AggSection], scroll: usize, area: Rect, buf: &mut Buffer) {
    // Drawn into a tall scratch buffer, then the visible window is copied: simple scrolling.
    let tall = Rect::new(0, 0, area.width, 2000);
    let mut scratch = Buffer::empty(tall);
    let used = aggregation_lines(sections, tall, &mut scratch);
    let first = scroll.min(used.saturating_sub(area.height as usize)) as u16;
    for row in 0..area.height {
        for col in 0..area.width {
            if let Some(cell) = scratch.cell((col, first + row)) {
                buf[(area.x + col, area.y + row)] = cell.clone();
            }
        }
    }
    // Lines beyond the window are said, not silently cut.
    let below = used.saturating_sub(first as usize + area.height as usize);
    if below > 0 && area.height > 0 && area.width > 20 {
        let note = format!(" {below} more line{} ↓ ", if below == 1 { "" } else { "s" });
        let width = note.chars().count() as u16;
        buf.set_string(
            area.right().saturating_sub(width),
            area.bottom() - 1,
            note,
            Style::default().fg(Color::Black).bg(Color::Gray),
        );
    }
    if first > 0 && area.height > 1 && area.width > 20 {
        let note = format!(" {first} more ↑ ");
        let width = note.chars().count() as u16;
        buf.set_string(
            area.right().saturating_sub(width),
            area.y,
            note,
            Style::default().fg(Color::Black).bg(Color::Gray),
        );
    }
}

/// Draws every section from the top of `area`; returns the lines used.
fn aggregation_lines(sections: &[AggSection], area: Rect, buf: &mut Buffer) -> usize {
    let mut y = area.y;
    for section in sections {
        if y >= area.bottom() {
            break;
        }
        match section {
            AggSection::Histogram { title, buckets } => {
                buf.set_string(
                    area.x,
                    y,
                    truncate(title, area.width),
                    Style::default().add_modifier(Modifier::BOLD),
                );
                y += 1;
                let total: u64 = buckets.iter().map(|b| b.1).sum::<u64>().max(1);
                let max = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1);
                let label_w = buckets
                    .iter()
                    .map(|b| b.0.chars().count())
                    .max()
                    .unwrap_or(0);
                let fixed = label_w + 1 + 10 + 1 + 7 + 1;
                let bar_w = (area.width as usize).saturating_sub(fixed).max(1);
                for (label, count) in buckets {
                    if y >= area.bottom() {
                        break;
                    }
                    let bar = (*count as u128 * bar_w as u128 / max as u128) as usize;
                    let pct = *count as f64 * 100.0 / total as f64;
                    let text = format!("{label:<label_w$} {count:>10} {pct:>6.1}% ");
                    buf.set_string(area.x, y, truncate(&text, area.width), Style::default());
                    let bx = area.x + text.chars().count() as u16;
                    if bx < area.right() {
                        buf.set_string(
                            bx,
                            y,
                            "█".repeat(bar.min((area.right() - bx) as usize)),
                            Style::default().fg(Color::Cyan),
                        );
                    }
                    y += 1;
                }
            }
            AggSection::Table {
                title,
                columns,
                rows,
            } => {
                buf.set_string(
                    area.x,
                    y,
                    truncate(title, area.width),
                    Style::default().add_modifier(Modifier::BOLD),
                );
                y += 1;
                let widths: Vec<usize> = (0..columns.len())
                    .map(|i| {
                        rows.iter()
                            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                            .chain([columns[i].chars().count()])
                            .max()
                            .unwrap_or(0)
                            .min(40)
                    })
                    .collect();
                let fmt_row = |cells: &[String]| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{:<w$}", truncate(c, *w as u16), w = *w))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                buf.set_string(
                    area.x,
                    y,
                    truncate(&fmt_row(columns), area.width),
                    Style::default().add_modifier(Modifier::UNDERLINED),
                );
                y += 1;
                for r in rows {
                    if y >= area.bottom() {
                        break;
                    }
                    buf.set_string(
                        area.x,
                        y,
                        truncate(&fmt_row(r), area.width),
                        Style::default(),
                    );
                    y += 1;
                }
            }
        }
        y += 1;
    }
    (y - area.y) as usize
}

fn completion_menu(menu: &MenuModel, x: u16, y: u16, screen: Rect, buf: &mut Buffer) {
    let height = (menu.items.len().min(8) as u16) + 2;
    let width = menu
        .items
        .iter()
        .map(|(v, d)| v.chars().count() + d.chars().count() + 3)
        .max()
        .unwrap_or(10)
        .min(60) as u16
        + 2;
    let top = if y + 1 + height <= screen.bottom() {
        y + 1
    } else {
        y.saturating_sub(height)
    };
    let left = x.min(screen.right().saturating_sub(width));
    let area = Rect::new(
        left,
        top,
        width.min(screen.width),
        height.min(screen.height),
    );
    ratatui::widgets::Widget::render(Clear, area, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Cyan));
    let inner = block.inner(area);
    ratatui::widgets::Widget::render(block, area, buf);
    let first = menu
        .selected
        .saturating_sub(inner.height.saturating_sub(1) as usize);
    for (row, (i, (value, desc))) in menu.items.iter().enumerate().skip(first).enumerate() {
        if row as u16 >= inner.height {
            break;
        }
        let style = if i == menu.selected {
            Style::default().bg(Color::Cyan).fg(Color::Black)
        } else {
            Style::default()
        };
        let text = if desc.is_empty() {
            value.clone()
        } else {
            format!("{value}  {desc}")
        };
        buf.set_string(
            inner.x,
            inner.y + row as u16,
            format!(
                "{:<w$}",
                truncate(&text, inner.width),
                w = inner.width as usize
            ),
            style,
        );
    }
}

/// Every key of the workbench. Worded to fit whole in two columns at 80×24.
pub const KEYS: &[(&str, &str)] = &[
    ("F1 / ?", "help (? not in editor)"),
    ("F2 F3 F4", "focus editor/probes/out"),
    ("F5", "attach probe at cursor"),
    ("F6", "attach all probes"),
    ("F7", "detach probe at cursor"),
    ("F8", "detach all probes"),
    ("F9", "start / stop recording"),
    ("F10", "switch emacs / vi keys"),
    ("Ctrl-S", "save the script"),
    ("Ctrl-Q/Ctrl-C", "quit (detaches all)"),
    ("Tab", "complete in the editor"),
    ("Up (line 1)", "editor history"),
    ("Ctrl-Z/Ctrl-G", "undo / redo (emacs)"),
    ("Esc", "close menu / to output"),
    ("←→ hl Tab", "output: switch tabs"),
    ("↑↓ jk PgUp/Dn", "output: scroll (wheel)"),
    ("Home", "output: oldest rows"),
    ("End / f", "output: follow newest"),
    ("p / Space", "output: pause / resume"),
    ("c", "output: clear table"),
    ("x", "output: export SVG/CSV"),
    ("Esc / e", "output: back to editor"),
    ("↑ ↓ j k", "probes: select a probe"),
    ("d / Enter", "probes: detach / show"),
    ("Tab / Esc", "probes: to output"),
    ("replay F5 / F6", "pause / restart"),
    ("replay F7 / F8", "seek back / forward"),
    ("replay F11/F12", "half / double speed"),
    ("replay: edit |", "re-runs the pipeline"),
    ("replay Ctrl-S", "export script + header"),
];

fn help_overlay(screen: Rect, buf: &mut Buffer) {
    let chars = |s: &str| s.chars().count() as u16;
    let widest = |keys: &[(&str, &str)]| {
        let key = keys.iter().map(|(k, _)| chars(k)).max().unwrap_or(0) + 2;
        (key, keys.iter().map(|(_, v)| chars(v)).max().unwrap_or(0))
    };
    // One column when it fits, else two side by side.
    let columns = if KEYS.len() as u16 + 2 <= screen.height {
        1
    } else {
        2
    };
    let per_column = KEYS.len().div_ceil(columns);
    let layout: Vec<(u16, u16)> = KEYS.chunks(per_column).map(widest).collect();
    let gaps = 2 + (columns as u16 - 1) * 2;
    let room = screen.width.saturating_sub(gaps) / columns as u16;
    let column_width = layout
        .iter()
        .map(|(k, v)| k + v)
        .max()
        .unwrap_or(0)
        .min(room);
    let width = (column_width * columns as u16 + gaps).min(screen.width);
    let height = (per_column as u16 + 2).min(screen.height);
    let area = Rect::new(
        screen.x + (screen.width - width) / 2,
        screen.y + (screen.height - height) / 2,
        width,
        height,
    );
    ratatui::widgets::Widget::render(Clear, area, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys ")
        .border_style(Style::default().fg(Color::Cyan));
    let inner = block.inner(area);
    ratatui::widgets::Widget::render(block, area, buf);
    for (i, (k, v)) in KEYS.iter().enumerate() {
        let (col, row) = (i / per_column, (i % per_column) as u16);
        if row >= inner.height {
            continue;
        }
        let x = inner.x + col as u16 * (column_width + 2);
        if x >= inner.right() {
            continue;
        }
        let room = (inner.right() - x).min(column_width);
        let key_width = layout[col].0.min(room);
        buf.set_string(
            x,
            inner.y + row,
            truncate(k, key_width),
            Style::default().fg(Color::Cyan),
        );
        if room > key_width {
            buf.set_string(
                x + key_width,
                inner.y + row,
                truncate(v, room - key_width),
                Style::default(),
            );
        }
    }
}

fn footer(s: &Screen, area: Rect, buf: &mut Buffer) {
    if let Some(n) = &s.notice {
        buf.set_string(
            area.x,
            area.y,
            truncate(n, area.width),
            Style::default().fg(Color::Yellow),
        );
        return;
    }
    let replay: &[(&str, &str)] = &[
        ("F1", "help"),
        ("F5", "pause"),
        ("F6", "restart"),
        ("F7/F8", "seek"),
        ("F11/F12", "speed"),
        ("←→", "tabs"),
        ("^Q", "quit"),
    ];
    let hints: &[(&str, &str)] = match s.focus {
        _ if s.replay => replay,
        Focus::Editor => &[
            ("F1", "help"),
            ("F5", "attach"),
            ("F6", "all"),
            ("F7", "detach"),
            ("Tab", "complete"),
            ("^S", "save"),
            ("^Q", "quit"),
        ],
        Focus::Probes => &[
            ("F1", "help"),
            ("↑↓", "select"),
            ("d", "detach"),
            ("Enter", "output"),
            ("F2", "editor"),
            ("^Q", "quit"),
        ],
        Focus::Output => &[
            ("F1", "help"),
            ("←→", "tabs"),
            ("↑↓", "scroll"),
            ("f", "follow"),
            ("p", "pause"),
            ("c", "clear"),
            ("F2", "editor"),
            ("^Q", "quit"),
        ],
    };
    // Whole hints only: when the line is short, the ones before `quit` go first.
    let width = |(k, v): &(&str, &str)| (k.chars().count() + v.chars().count() + 5) as u16;
    let mut hints: Vec<(&str, &str)> = hints.to_vec();
    while hints.len() > 2 && hints.iter().map(width).sum::<u16>() > area.width + 2 {
        hints.remove(hints.len() - 2);
    }
    let mut spans = Vec::new();
    for (k, v) in &hints {
        spans.push(Span::styled(
            format!(" {k} "),
            Style::default().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {v}  ")));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}
