//! The workbench's state and its update function: every input (keys, mouse, compile results,
//! records, aggregation snapshots) is an [`Event`]; `update` changes the state and returns
//! [`Action`]s for the driver to carry out off the UI thread. Pure and testable: no IO here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::app::aggregates;
use crate::editor::{Editor, Outcome};
use crate::probes::front::{Diagnostic, Script};
use crate::probes::runtime::decode::Value as Decoded;
use crate::probes::runtime::maps::AggSnapshot;
use crate::views::Row;
use nubpf_ebpf::layout::AggLayout;

/// The generation of every replayed probe (replays never re-attach).
pub const REPLAY_GENERATION: u64 = 1;

/// Rows kept per probe; older rows are dropped (and counted) beyond this.
pub const MAX_ROWS: usize = 1_000_000;

/// Which pane has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Editor,
    Probes,
    Output,
}

/// A probe's life in the workbench.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeState {
    /// Compiled, not attached.
    Ready,
    Attaching,
    Attached,
    Detaching,
    Detached,
    Error(String),
    /// Played back from a recording.
    Replaying,
}

impl ProbeState {
    pub fn label(&self) -> &str {
        match self {
            ProbeState::Ready => "ready",
            ProbeState::Attaching => "attaching",
            ProbeState::Attached => "attached",
            ProbeState::Detaching => "detaching",
            ProbeState::Detached => "detached",
            ProbeState::Error(_) => "error",
            ProbeState::Replaying => "replay",
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, ProbeState::Attaching | ProbeState::Attached)
    }
}

/// The records of one probe: columns, rows as display strings, widths from content.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: VecDeque<Row>,
    pub widths: Vec<u16>,
    /// Every record received, dropped ones included.
    pub total: u64,
    /// Records dropped from the buffer (beyond [`MAX_ROWS`]).
    pub discarded: u64,
}

impl Rows {
    fn push(&mut self, columns: &[String], values: &[Decoded]) {
        if self.columns != columns {
            self.columns = columns.to_vec();
            self.widths = columns.iter().map(|c| c.chars().count() as u16).collect();
        }
        let row = Row::new(values.iter().map(|v| v.to_string()));
        for (w, cell) in self.widths.iter_mut().zip(row.cells()) {
            *w = (*w).max((cell.chars().count() as u16).min(60));
        }
        self.rows.push_back(row);
        self.total += 1;
        if self.rows.len() > MAX_ROWS {
            self.rows.pop_front();
            self.discarded += 1;
        }
    }
}

/// One probe in the workbench.
#[derive(Clone, Debug)]
pub struct ProbeView {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub state: ProbeState,
    /// Runs of the program (kernel statistics), or records when those are unavailable.
    pub hits: u64,
    pub rate: f64,
    /// Records lost in the kernel (ring buffer full) plus records the UI could not take.
    pub drops: u64,
    pub insns: usize,
    pub attach_time: Option<Duration>,
    pub rows: Rows,
    pub aggregations: Vec<(AggLayout, AggSnapshot)>,
    /// The user-space pipeline's text and its latest result.
    pub pipeline: Option<String>,
    pub pipeline_result: Option<Rows>,
    pub pipeline_error: Option<String>,
    /// The latest result's window: newest records used and older ones left out.
    pub pipeline_window: Option<(usize, u64)>,
    /// The probe's text in the script when it was attached.
    pub source: String,
    /// Attachment generation: events of older generations are ignored.
    pub generation: u64,
    /// Events per second, one point per second since attaching (at most an hour).
    pub rate_history: Vec<(f64, f64)>,
    pub note: Option<String>,
}

/// What an output tab shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TabKind {
    Records,
    Aggregations,
    Pipeline,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tab {
    pub probe: usize,
    pub kind: TabKind,
    pub title: String,
}

/// Everything that happens to the workbench.
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Periodic: rates, notices.
    Tick,
    /// A background compile finished.
    Compiled {
        generation: u64,
        script: Option<Arc<Script>>,
        diagnostics: Vec<Diagnostic>,
        took: Duration,
    },
    Attached {
        probe: String,
        generation: u64,
        result: Result<Duration, AttachFailure>,
        insns: usize,
        /// How it attached when not as written (`fentry` for a `bpf_kprobe`).
        mechanism: Option<String>,
    },
    Detached {
        probe: String,
        generation: u64,
    },
    Records {
        probe: String,
        generation: u64,
        columns: Vec<String>,
        records: Vec<Vec<Decoded>>,
    },
    Aggregates {
        probe: String,
        generation: u64,
        snapshots: Vec<(AggLayout, AggSnapshot)>,
    },
    Stats {
        probe: String,
        generation: u64,
        hits: u64,
        /// Records lost in all: in the kernel (ring buffer full) and on the way to the UI.
        drops: u64,
        /// Of those, lost in the kernel, so missing from a recording too.
        kernel_drops: u64,
    },
    PipelineResult {
        probe: String,
        generation: u64,
        result: Result<(Vec<String>, Vec<Vec<String>>), String>,
        /// `Some((used, left_out))` when the pipeline ran over only the newest `used` records
        /// and `left_out` older ones were not in its input (a live probe keeps a window).
        window: Option<(usize, u64)>,
    },
    /// A message for the user.
    Notice(String),
    /// Where a replay is.
    ReplayStatus {
        position: u64,
        duration: u64,
        speed: Option<f64>,
        paused: bool,
    },
    /// A replay went back in time: the probe's rows start over.
    ClearRows {
        probe: String,
    },
}

/// Commands to a replay.
#[derive(Debug, Clone)]
pub enum ReplayControl {
    TogglePause,
    /// Moves by this many nanoseconds (negative: back).
    Seek(i64),
    Restart,
    /// Multiplies the speed (`None`: as fast as possible).
    Speed(Option<f64>),
    /// Re-runs probe `probe`'s pipeline with new text at `span` of `source`.
    SetPipeline {
        probe: String,
        text: String,
        span: nubpf_ebpf::Span,
        source: String,
    },
}

/// A replay's position, for the status bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayStatus {
    pub position: u64,
    pub duration: u64,
    pub speed: Option<f64>,
    pub paused: bool,
}

/// Why a probe did not attach; a verifier rejection or a missing kernel feature carries the
/// diagnostic to show on the text it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachFailure {
    pub message: String,
    /// Shown on the script's text when the failure belongs to a place in it (a verifier
    /// rejection, a probe kind this kernel lacks).
    pub diagnostic: Option<Box<Diagnostic>>,
}

impl From<String> for AttachFailure {
    fn from(message: String) -> Self {
        AttachFailure {
            message,
            diagnostic: None,
        }
    }
}

impl From<Diagnostic> for AttachFailure {
    fn from(d: Diagnostic) -> Self {
        AttachFailure {
            message: d.message.clone(),
            diagnostic: Some(Box::new(d)),
        }
    }
}

/// Work for the driver.
#[derive(Debug)]
pub enum Action {
    Compile {
        generation: u64,
        source: String,
    },
    Attach {
        probe: String,
        generation: u64,
        script: Arc<Script>,
        index: usize,
    },
    Detach {
        probe: String,
        generation: u64,
    },
    Save(std::path::PathBuf, String),
    /// Start recording the attached probes' output into a new file.
    StartRecording {
        path: std::path::PathBuf,
        script: Arc<Script>,
    },
    StopRecording,
    Replay(ReplayControl),
    /// Writes a new file (never overwriting).
    WriteFile(std::path::PathBuf, Vec<u8>),
    /// Draws a plot into new `.svg` and `.png` files named `base` + extension.
    Plot(std::path::PathBuf, crate::app::session::plot::PlotData),
    Quit,
}

/// Screen regions of the last frame, for mouse hits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Regions {
    pub editor: Rect,
    pub probes: Rect,
    pub output: Rect,
    pub tabs: Rect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingAttach {
    AtCursor,
    All,
}

/// Facts shown in the status bar.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// `None` when probes can be attached; else what is missing.
    pub privileges: Option<String>,
    pub kernel: String,
}

pub struct App {
    pub editor: Editor,
    pub file: Option<std::path::PathBuf>,
    /// The editor pane's title when not the file (e.g. a replay).
    pub title: Option<String>,
    /// In a replay: the header comment Ctrl-S writes above the script.
    pub export_header: Option<String>,
    pub focus: Focus,
    pub help: bool,
    pub diagnostics: Vec<Diagnostic>,
    pub script: Option<Arc<Script>>,
    pub compile_generation: u64,
    pub compiling: bool,
    pub compile_time: Option<Duration>,
    pub probes: Vec<ProbeView>,
    pub selected_probe: usize,
    pub tab: usize,
    /// Rows from the bottom of the table the view is scrolled up by; 0 follows new rows.
    pub scroll: usize,
    pub follow: bool,
    pub paused: bool,
    pub status: Status,
    pub notice: Option<(String, Instant)>,
    pub regions: Regions,
    pub quit: bool,
    /// The file being recorded into, if any.
    pub recording: Option<std::path::PathBuf>,
    /// Set when the workbench plays a recording instead of attaching probes.
    pub replay: Option<ReplayStatus>,
    /// F5 / F6 pressed while a compile was running: attach when it is done.
    pending_attach: Option<PendingAttach>,
    next_generation: u64,
    last_rate: Instant,
    last_totals: Vec<u64>,
}

fn ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

impl App {
    pub fn new(editor: Editor, file: Option<std::path::PathBuf>, status: Status) -> App {
        App {
            editor,
            file,
            title: None,
            export_header: None,
            focus: Focus::Editor,
            help: false,
            diagnostics: Vec::new(),
            script: None,
            compile_generation: 0,
            compiling: false,
            compile_time: None,
            probes: Vec::new(),
            selected_probe: 0,
            tab: 0,
            scroll: 0,
            follow: true,
            paused: false,
            status,
            notice: None,
            regions: Regions::default(),
            quit: false,
            recording: None,
            replay: None,
            pending_attach: None,
            next_generation: 1,
            last_rate: Instant::now(),
            last_totals: Vec::new(),
        }
    }

    /// The first compile of the loaded text.
    pub fn start(&mut self) -> Vec<Action> {
        self.recompile()
    }

    fn recompile(&mut self) -> Vec<Action> {
        self.compile_generation += 1;
        self.compiling = true;
        vec![Action::Compile {
            generation: self.compile_generation,
            source: self.editor.text().to_string(),
        }]
    }

    pub fn notify(&mut self, text: impl Into<String>) {
        self.notice = Some((text.into(), Instant::now()));
    }

    /// Output tabs: records for probes that emit, aggregations, pipeline results.
    pub fn tabs(&self) -> Vec<Tab> {
        let mut tabs = Vec::new();
        for (i, p) in self.probes.iter().enumerate() {
            if !p.rows.columns.is_empty() || p.aggregations.is_empty() {
                tabs.push(Tab {
                    probe: i,
                    kind: TabKind::Records,
                    title: p.name.clone(),
                });
            }
            if !p.aggregations.is_empty() {
                let hist = p
                    .aggregations
                    .iter()
                    .any(|(l, _)| aggregates::is_histogram(l.kind));
                tabs.push(Tab {
                    probe: i,
                    kind: TabKind::Aggregations,
                    title: format!("{} {}", p.name, if hist { "hist" } else { "aggs" }),
                });
            }
            if p.pipeline.is_some() {
                tabs.push(Tab {
                    probe: i,
                    kind: TabKind::Pipeline,
                    title: format!("{} | …", p.name),
                });
            }
        }
        tabs
    }

    fn probe_mut(&mut self, name: &str, generation: u64) -> Option<&mut ProbeView> {
        self.probes
            .iter_mut()
            .find(|p| p.name == name && p.generation == generation)
    }

    /// The script probe under the editor's cursor.
    pub fn probe_at_cursor(&self) -> Option<usize> {
        let script = self.script.as_ref()?;
        let text = self.editor.text();
        let at = self.editor.cursor().min(text.len());
        let cursor = at as u32;
        // The probe around the cursor; else one on the cursor's line (the cursor is often
        // just past a probe's closing brace); else the only probe.
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1) as u32;
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i) as u32;
        script
            .probes
            .iter()
            .position(|p| p.span.start <= cursor && cursor <= p.span.end)
            .or_else(|| {
                script
                    .probes
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.span.start <= line_end && p.span.end >= line_start)
                    .min_by_key(|(_, p)| {
                        p.span
                            .end
                            .abs_diff(cursor)
                            .min(p.span.start.abs_diff(cursor))
                    })
                    .map(|(i, _)| i)
            })
            .or_else(|| (script.probes.len() == 1).then_some(0))
    }

    fn attach(&mut self, index: usize) -> Vec<Action> {
        if let Some(why) = &self.status.privileges {
            self.notify(format!("cannot attach: {why}"));
            return vec![];
        }
        let Some(script) = self.script.clone() else {
            self.notify("fix the errors first: the script does not compile");
            return vec![];
        };
        let Some(sp) = script.probes.get(index) else {
            return vec![];
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut actions = Vec::new();
        let source = script
            .source
            .get(sp.span.start as usize..sp.span.end as usize)
            .unwrap_or("")
            .to_string();
        let view = ProbeView {
            name: sp.name.clone(),
            kind: sp.kind.word().to_string(),
            target: sp.attach.describe(),
            state: ProbeState::Attaching,
            hits: 0,
            rate: 0.0,
            drops: 0,
            insns: 0,
            attach_time: None,
            rows: Rows::default(),
            aggregations: Vec::new(),
            pipeline: sp.pipeline.as_ref().map(|(t, _)| t.clone()),
            pipeline_result: None,
            pipeline_error: None,
            pipeline_window: None,
            source,
            generation,
            rate_history: Vec::new(),
            note: sp.note.clone(),
        };
        // Re-attaching an edited probe replaces the old one.
        if let Some(old) = self.probes.iter().position(|p| p.name == sp.name) {
            let prev = &self.probes[old];
            if prev.state.is_live() {
                actions.push(Action::Detach {
                    probe: prev.name.clone(),
                    generation: prev.generation,
                });
            }
            self.probes[old] = view;
            self.selected_probe = old;
        } else {
            self.probes.push(view);
            self.selected_probe = self.probes.len() - 1;
        }
        self.editor.remember();
        actions.push(Action::Attach {
            probe: sp.name.clone(),
            generation,
            script,
            index,
        });
        self.select_tab_of(self.selected_probe);
        actions
    }

    /// F5 / F6: attach now, or once the running compile of the latest text is done.
    fn attach_requested(&mut self, what: PendingAttach) -> Vec<Action> {
        if self.compiling {
            self.pending_attach = Some(what);
            self.notify("attaching once the compile finishes…");
            return vec![];
        }
        match what {
            PendingAttach::AtCursor => match self.probe_at_cursor() {
                Some(i) => self.attach(i),
                None if self.script.is_none() => {
                    self.notify("fix the errors first: the script does not compile");
                    vec![]
                }
                None => {
                    self.notify("no probe under the cursor");
                    vec![]
                }
            },
            PendingAttach::All => {
                let n = self.script.as_ref().map_or(0, |s| s.probes.len());
                if n == 0 {
                    self.notify("nothing to attach: the script does not compile");
                }
                (0..n).flat_map(|i| self.attach(i)).collect()
            }
        }
    }

    fn select_tab_of(&mut self, probe: usize) {
        if let Some(t) = self.tabs().iter().position(|t| t.probe == probe) {
            self.tab = t;
            self.scroll = 0;
        }
    }

    fn detach(&mut self, index: usize) -> Vec<Action> {
        let Some(p) = self.probes.get_mut(index) else {
            return vec![];
        };
        if !p.state.is_live() {
            return vec![];
        }
        p.state = ProbeState::Detaching;
        vec![Action::Detach {
            probe: p.name.clone(),
            generation: p.generation,
        }]
    }

    pub fn update(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Key(key) => self.key(key),
            Event::Mouse(m) => {
                self.mouse(m);
                vec![]
            }
            Event::Resize(..) => vec![],
            Event::Tick => {
                self.tick();
                vec![]
            }
            Event::Compiled {
                generation,
                script,
                diagnostics,
                took,
            } => {
                if generation == self.compile_generation {
                    self.compiling = false;
                    self.compile_time = Some(took);
                    self.editor.set_marks(
                        diagnostics
                            .iter()
                            .filter(|d| d.is_error())
                            .map(|d| d.span.start as usize..d.span.end as usize)
                            .collect(),
                    );
                    self.diagnostics = diagnostics;
                    self.script = script;
                    if let Some(pending) = self.pending_attach.take() {
                        return self.attach_requested(pending);
                    }
                }
                vec![]
            }
            Event::Attached {
                probe,
                generation,
                result,
                insns,
                mechanism,
            } => {
                if let Some(p) = self.probe_mut(&probe, generation) {
                    if let Some(m) = mechanism {
                        p.kind = format!("{}→{m}", p.kind);
                    }
                    match result {
                        Ok(t) => {
                            p.state = ProbeState::Attached;
                            p.attach_time = Some(t);
                            p.insns = insns;
                        }
                        Err(e) => {
                            // The output tab shows the reason with its help lines.
                            let mut reason = e.message.clone();
                            for help in e.diagnostic.iter().flat_map(|d| &d.help) {
                                reason.push_str("\nhelp: ");
                                reason.push_str(help);
                            }
                            p.state = ProbeState::Error(reason);
                            self.notify(format!("{probe}: {}", e.message));
                            // A rejection that belongs to a place in the script goes on that text.
                            if let Some(d) = e.diagnostic {
                                let mut d = *d;
                                d.message = format!("{probe}: {}", d.message);
                                self.diagnostics.push(d);
                                let marks = self
                                    .diagnostics
                                    .iter()
                                    .filter(|d| d.is_error())
                                    .map(|d| d.span.start as usize..d.span.end as usize)
                                    .collect();
                                self.editor.set_marks(marks);
                            }
                        }
                    }
                }
                vec![]
            }
            Event::Detached { probe, generation } => {
                if let Some(p) = self.probe_mut(&probe, generation)
                    && !matches!(p.state, ProbeState::Error(_))
                {
                    p.state = ProbeState::Detached;
                }
                vec![]
            }
            Event::Records {
                probe,
                generation,
                columns,
                records,
            } => {
                // Paused, or scrolled back to read: the rows keep coming into the buffer but
                // the view stays on the rows it shows (the scroll offset counts from the
                // newest row, so it grows with every row added).
                let anchored = (self.paused || self.scroll > 0)
                    && self.tabs().get(self.tab).is_some_and(|t| {
                        t.kind == TabKind::Records
                            && self
                                .probes
                                .get(t.probe)
                                .is_some_and(|p| p.name == probe && p.generation == generation)
                    });
                let mut shown = None;
                if let Some(p) = self.probe_mut(&probe, generation) {
                    for r in &records {
                        p.rows.push(&columns, r);
                    }
                    shown = Some(p.rows.rows.len());
                }
                if anchored && let Some(len) = shown {
                    self.scroll = (self.scroll + records.len()).min(len.saturating_sub(1));
                }
                vec![]
            }
            Event::Aggregates {
                probe,
                generation,
                snapshots,
            } => {
                if let Some(p) = self.probe_mut(&probe, generation) {
                    let had = !p.aggregations.is_empty();
                    p.aggregations = snapshots;
                    if !had {
                        // New aggregation tab: keep the selected tab on the same probe.
                        let tab = self.tabs().get(self.tab).cloned();
                        if let Some(tab) = tab {
                            self.tab = self
                                .tabs()
                                .iter()
                                .position(|t| *t == tab)
                                .unwrap_or(self.tab);
                        }
                    }
                }
                vec![]
            }
            Event::Stats {
                probe,
                generation,
                hits,
                drops,
                ..
            } => {
                if let Some(p) = self.probe_mut(&probe, generation) {
                    p.hits = hits.max(p.rows.total);
                    p.drops = drops;
                }
                vec![]
            }
            Event::PipelineResult {
                probe,
                generation,
                result,
                window,
            } => {
                if let Some(p) = self.probe_mut(&probe, generation) {
                    p.pipeline_window = window;
                    match result {
                        Ok((columns, rows)) => {
                            let mut r = Rows::default();
                            for row in rows {
                                let values: Vec<Decoded> =
                                    row.into_iter().map(Decoded::Str).collect();
                                r.push(&columns, &values);
                            }
                            p.pipeline_result = Some(r);
                            p.pipeline_error = None;
                        }
                        Err(e) => p.pipeline_error = Some(e),
                    }
                }
                vec![]
            }
            Event::Notice(text) => {
                self.notify(text);
                vec![]
            }
            Event::ReplayStatus {
                position,
                duration,
                speed,
                paused,
            } => {
                self.replay = Some(ReplayStatus {
                    position,
                    duration,
                    speed,
                    paused,
                });
                vec![]
            }
            Event::ClearRows { probe } => {
                if let Some(p) = self.probes.iter_mut().find(|p| p.name == probe) {
                    p.rows.rows.clear();
                    p.rows.total = 0;
                    p.hits = 0;
                }
                vec![]
            }
        }
    }

    /// A workbench playing `probes` back instead of attaching: their views exist from the
    /// start, in the replaying state.
    pub fn start_replay(
        &mut self,
        probes: Vec<(String, String, String, Option<String>)>,
        duration: u64,
    ) {
        self.probes = probes
            .into_iter()
            .map(|(name, kind, target, pipeline)| ProbeView {
                name,
                kind,
                target,
                state: ProbeState::Replaying,
                hits: 0,
                rate: 0.0,
                drops: 0,
                insns: 0,
                attach_time: None,
                rows: Rows::default(),
                aggregations: Vec::new(),
                pipeline,
                pipeline_result: None,
                pipeline_error: None,
                pipeline_window: None,
                source: String::new(),
                generation: REPLAY_GENERATION,
                rate_history: Vec::new(),
                note: None,
            })
            .collect();
        self.replay = Some(ReplayStatus {
            position: 0,
            duration,
            speed: Some(1.0),
            paused: false,
        });
        self.focus = Focus::Output;
    }

    /// Keys of a replay: F5 pause, F6 restart, F7 / F8 seek, F11 / F12 slower / faster.
    fn replay_key(&mut self, key: &KeyEvent) -> Option<Vec<Action>> {
        let status = self.replay?;
        let step = (status.duration / 20).max(1_000_000_000) as i64;
        let control = match key.code {
            KeyCode::F(5) => ReplayControl::TogglePause,
            KeyCode::F(6) => ReplayControl::Restart,
            KeyCode::F(7) => ReplayControl::Seek(-step),
            KeyCode::F(8) => ReplayControl::Seek(step),
            KeyCode::F(11) => ReplayControl::Speed(Some(status.speed.map_or(1.0, |s| s / 2.0))),
            KeyCode::F(12) => ReplayControl::Speed(match status.speed {
                Some(s) if s >= 64.0 => None,
                Some(s) => Some(s * 2.0),
                None => None,
            }),
            KeyCode::F(9) => {
                self.notify("this is a replay: there is nothing new to record");
                return Some(vec![]);
            }
            _ => return None,
        };
        Some(vec![Action::Replay(control)])
    }

    fn tick(&mut self) {
        let elapsed = self.last_rate.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            self.last_totals.resize(self.probes.len(), 0);
            for (p, last) in self.probes.iter_mut().zip(self.last_totals.iter_mut()) {
                let now = p.hits.max(p.rows.total);
                p.rate = now.saturating_sub(*last) as f64 / elapsed;
                *last = now;
                if p.state.is_live() || p.state == ProbeState::Replaying {
                    let t = p.rate_history.last().map_or(0.0, |(t, _)| t + elapsed);
                    if p.rate_history.len() < 3600 {
                        p.rate_history.push((t, p.rate));
                    }
                }
            }
            self.last_rate = Instant::now();
        }
        if self
            .notice
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(6))
        {
            self.notice = None;
        }
    }

    /// Keys every pane shares.
    fn global_key(&mut self, key: &KeyEvent) -> Option<Vec<Action>> {
        if !ctrl(key, 'c')
            && !ctrl(key, 'q')
            && !self.help
            && let Some(actions) = self.replay_key(key)
        {
            return Some(actions);
        }
        if ctrl(key, 'c') || ctrl(key, 'q') {
            self.quit = true;
            let mut actions: Vec<Action> = (0..self.probes.len())
                .flat_map(|i| self.detach(i))
                .collect();
            actions.push(Action::Quit);
            return Some(actions);
        }
        if self.help {
            self.help = false;
            return Some(vec![]);
        }
        match key.code {
            KeyCode::F(1) => {
                self.help = true;
                Some(vec![])
            }
            KeyCode::F(2) => {
                self.focus = Focus::Editor;
                Some(vec![])
            }
            KeyCode::F(3) => {
                self.focus = Focus::Probes;
                Some(vec![])
            }
            KeyCode::F(4) => {
                self.focus = Focus::Output;
                Some(vec![])
            }
            KeyCode::F(5) => Some(self.attach_requested(PendingAttach::AtCursor)),
            KeyCode::F(6) => Some(self.attach_requested(PendingAttach::All)),
            KeyCode::F(7) => {
                let name = match self.focus {
                    Focus::Probes => self.probes.get(self.selected_probe).map(|p| p.name.clone()),
                    _ => self
                        .probe_at_cursor()
                        .and_then(|i| self.script.as_ref()?.probes.get(i).map(|p| p.name.clone())),
                };
                let index = name.and_then(|n| self.probes.iter().position(|p| p.name == n));
                Some(index.map(|i| self.detach(i)).unwrap_or_default())
            }
            KeyCode::F(8) => Some(
                (0..self.probes.len())
                    .flat_map(|i| self.detach(i))
                    .collect(),
            ),
            KeyCode::F(9) => Some(self.toggle_recording()),
            KeyCode::F(10) => {
                self.editor.toggle_keymap();
                self.notify(format!("keys: {}", self.editor.mode_name()));
                Some(vec![])
            }
            _ if ctrl(key, 's') => Some(self.save()),
            _ => None,
        }
    }

    /// During a replay, a probe whose pipeline text changed is re-run over the recording.
    /// Probes pair with the script's probe commands in order; only the user-space part of
    /// each pipeline matters here, so the text is parsed, not compiled (no catalogue).
    fn replayed_pipeline_edits(&mut self) -> Vec<Action> {
        let source = self.editor.text().to_string();
        let parts = crate::probes::front::pipeline_parts(&source);
        let mut actions = Vec::new();
        for (p, part) in self.probes.iter_mut().zip(parts) {
            let Some((text, span)) = part else {
                continue;
            };
            if p.pipeline.as_deref() != Some(text.as_str()) {
                p.pipeline = Some(text.clone());
                actions.push(Action::Replay(ReplayControl::SetPipeline {
                    probe: p.name.clone(),
                    text,
                    span,
                    source: source.clone(),
                }));
            }
        }
        actions
    }

    /// `x` in the output: exports what the tab shows — histograms as SVG and PNG plots,
    /// tables as CSV — into new files in the working directory.
    fn export_tab(&mut self) -> Vec<Action> {
        let Some(tab) = self.tabs().get(self.tab).cloned() else {
            return vec![];
        };
        let Some(p) = self.probes.get(tab.probe) else {
            return vec![];
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let base = format!("{}-{stamp}", crate::app::session::table_name(&p.name));
        let csv = |rows: &Rows| {
            let escape = |c: &str| {
                if c.contains([',', '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.to_string()
                }
            };
            let mut out = rows
                .columns
                .iter()
                .map(|c| escape(c))
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
            for r in &rows.rows {
                out.push_str(&r.cells().map(escape).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
            out.into_bytes()
        };
        let action = match tab.kind {
            TabKind::Records => {
                let mut actions = vec![Action::WriteFile(
                    format!("{base}.csv").into(),
                    csv(&p.rows),
                )];
                if p.rate_history.len() >= 2 {
                    actions.push(Action::Plot(
                        format!("{base}-rate").into(),
                        crate::app::session::plot::PlotData::Rate {
                            title: format!("{} events per second", p.name),
                            points: p.rate_history.clone(),
                        },
                    ));
                }
                return actions;
            }
            TabKind::Pipeline => match &p.pipeline_result {
                Some(r) => Action::WriteFile(format!("{base}-pipeline.csv").into(), csv(r)),
                None => return vec![],
            },
            TabKind::Aggregations => {
                let hist = p
                    .aggregations
                    .iter()
                    .find(|(l, _)| aggregates::is_histogram(l.kind));
                match hist {
                    Some((layout, snapshot)) => {
                        let (_, buckets) = aggregates::histogram_groups(snapshot)
                            .into_iter()
                            .next()
                            .unwrap_or_default();
                        Action::Plot(
                            format!("{base}-{}", snapshot.name).into(),
                            crate::app::session::plot::PlotData::Histogram {
                                title: format!("{} @{}", p.name, snapshot.name),
                                bars: buckets
                                    .into_iter()
                                    .map(|(b, c)| (aggregates::bucket_label(layout.kind, b), c))
                                    .collect(),
                            },
                        )
                    }
                    None => {
                        let (layout, snapshot) = match p.aggregations.first() {
                            Some(a) => a,
                            None => return vec![],
                        };
                        let mut rows = Rows::default();
                        let mut columns = aggregates::key_columns(layout);
                        columns.push(snapshot.name.clone());
                        for e in aggregates::sorted_entries(snapshot).into_iter().rev() {
                            let mut values: Vec<Decoded> = e.key.clone();
                            values.push(Decoded::Str(e.value.value().to_string()));
                            rows.push(&columns, &values);
                        }
                        Action::WriteFile(
                            format!("{base}-{}.csv", snapshot.name).into(),
                            csv(&rows),
                        )
                    }
                }
            }
        };
        vec![action]
    }

    /// F9: starts recording into `nubpf-<time>.db` in the working directory, or stops.
    fn toggle_recording(&mut self) -> Vec<Action> {
        if let Some(path) = self.recording.take() {
            self.notify(format!("recording stopped: {}", path.display()));
            return vec![Action::StopRecording];
        }
        let Some(script) = self.script.clone() else {
            self.notify("fix the errors first: recording needs a script that compiles");
            return vec![];
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path = std::path::PathBuf::from(format!("nubpf-{stamp}.db"));
        self.recording = Some(path.clone());
        self.notify(format!(
            "recording attached probes to {} (F9 stops); probes of this script attached later are recorded too, probes added to it later are not",
            path.display()
        ));
        vec![Action::StartRecording { path, script }]
    }

    fn save(&mut self) -> Vec<Action> {
        if let Some(header) = &self.export_header {
            // A replay exports its script under a header saying where it was recorded.
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let path = std::path::PathBuf::from(format!("session-{stamp}.nu"));
            let text = format!("{header}{}\n", self.editor.text().trim_end());
            return vec![Action::WriteFile(path, text.into_bytes())];
        }
        let path = self
            .file
            .get_or_insert_with(|| std::path::PathBuf::from("probes.nu"))
            .clone();
        self.notify(format!("saved {}", path.display()));
        vec![Action::Save(path, self.editor.text().to_string())]
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Action> {
        if let Some(actions) = self.global_key(&key) {
            return actions;
        }
        match self.focus {
            Focus::Editor => {
                if key.code == KeyCode::Esc
                    && self.editor.menu().is_none()
                    && self.editor.mode_name() == "emacs"
                {
                    self.focus = Focus::Output;
                    return vec![];
                }
                match self.editor.handle_key(key) {
                    Outcome::Edited if self.replay.is_some() => self.replayed_pipeline_edits(),
                    Outcome::Edited => self.recompile(),
                    _ => vec![],
                }
            }
            Focus::Probes => {
                match key.code {
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.selected_probe = self.selected_probe.saturating_sub(1)
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.selected_probe =
                            (self.selected_probe + 1).min(self.probes.len().saturating_sub(1))
                    }
                    KeyCode::Enter => self.select_tab_of(self.selected_probe),
                    KeyCode::Char('d') => return self.detach(self.selected_probe),
                    KeyCode::Char('?') => self.help = true,
                    KeyCode::Tab | KeyCode::Esc => self.focus = Focus::Output,
                    _ => {}
                }
                vec![]
            }
            Focus::Output => {
                let tabs = self.tabs().len().max(1);
                match key.code {
                    KeyCode::Left | KeyCode::Char('h') => {
                        self.tab = (self.tab + tabs - 1) % tabs;
                        self.scroll = 0;
                    }
                    KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                        self.tab = (self.tab + 1) % tabs;
                        self.scroll = 0;
                    }
                    KeyCode::Up | KeyCode::Char('k') => self.scroll_by(1),
                    KeyCode::Down | KeyCode::Char('j') => self.scroll_by(-1),
                    KeyCode::PageUp => self.scroll_by(20),
                    KeyCode::PageDown => self.scroll_by(-20),
                    KeyCode::Home => self.scroll_by(i64::MAX / 2),
                    KeyCode::End | KeyCode::Char('f') => {
                        self.follow = true;
                        self.scroll = 0;
                    }
                    KeyCode::Char('p') | KeyCode::Char(' ') => {
                        self.paused = !self.paused;
                        if self.paused {
                            self.notify("paused: the view holds still, new rows are kept");
                        } else {
                            if self.follow {
                                self.scroll = 0;
                            }
                            self.notify("resumed");
                        }
                    }
                    KeyCode::Char('c') => {
                        if let Some(t) = self.tabs().get(self.tab).cloned()
                            && let Some(p) = self.probes.get_mut(t.probe)
                        {
                            p.rows.rows.clear();
                            self.scroll = 0;
                        }
                    }
                    KeyCode::Char('x') => return self.export_tab(),
                    KeyCode::Char('?') => self.help = true,
                    KeyCode::Esc | KeyCode::Char('e') => self.focus = Focus::Editor,
                    _ => {}
                }
                vec![]
            }
        }
    }

    fn scroll_by(&mut self, delta: i64) {
        let tab = self.tabs().get(self.tab).cloned();
        let rows = tab
            .as_ref()
            .and_then(|t| self.probes.get(t.probe))
            .map_or(0, |p| match tab.as_ref().map(|t| t.kind) {
                // Aggregations scroll by lines, downwards: bounded when drawn.
                Some(TabKind::Aggregations) => 2000,
                _ => p.rows.rows.len(),
            });
        // Tables scroll up from the newest row; aggregations down from the top.
        let delta = if tab.map(|t| t.kind) == Some(TabKind::Aggregations) {
            -delta
        } else {
            delta
        };
        let s = (self.scroll as i64 + delta).clamp(0, rows.saturating_sub(1) as i64);
        self.scroll = s as usize;
        self.follow = self.scroll == 0;
    }

    fn mouse(&mut self, m: MouseEvent) {
        let at = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if self.regions.editor.contains(at) {
                    self.focus = Focus::Editor;
                } else if self.regions.probes.contains(at) {
                    self.focus = Focus::Probes;
                    let row = m.row.saturating_sub(self.regions.probes.y + 2) as usize;
                    if row < self.probes.len() {
                        self.selected_probe = row;
                    }
                } else if self.regions.tabs.contains(at) {
                    self.focus = Focus::Output;
                    let mut x = self.regions.tabs.x;
                    for (i, t) in self.tabs().iter().enumerate() {
                        let w = t.title.chars().count() as u16 + 3;
                        if m.column >= x && m.column < x + w {
                            self.tab = i;
                            self.scroll = 0;
                        }
                        x += w;
                    }
                } else if self.regions.output.contains(at) {
                    self.focus = Focus::Output;
                }
            }
            MouseEventKind::ScrollUp if self.regions.output.contains(at) => self.scroll_by(3),
            MouseEventKind::ScrollDown if self.regions.output.contains(at) => self.scroll_by(-3),
            _ => {}
        }
    }

    /// Records, hits, drops over every probe (for the status bar).
    pub fn totals(&self) -> (f64, u64) {
        (
            self.probes.iter().map(|p| p.rate).sum(),
            self.probes.iter().map(|p| p.drops).sum(),
        )
    }
}
