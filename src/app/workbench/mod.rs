//! The workbench (`nubpf-tui` without a subcommand): a full-screen TUI with the editor,
//! live diagnostics, the probes panel and streaming output.
//!
//! The UI thread only draws and updates [`state::App`]; compiling, loading, attaching,
//! reading and detaching happen on other threads (`worker`) and report back as events. The
//! terminal is restored on quit, Ctrl-C, SIGTERM and panic.

pub mod render;
pub mod state;
pub mod worker;

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use nu_protocol::engine::StateWorkingSet;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::style::{Color, Modifier, Style};

use crate::app::session::record::{Item, Recorder};
use crate::editor::{Complete, Editor, Highlight, Keymap, Suggestion};
use crate::probes::catalogue::Catalogue;
use crate::probes::front::complete;
use crate::probes::runtime::features::Features;
use state::{Action, App, Event, Status};

/// Nushell syntax colours from nu-parser's flattened shapes.
pub struct NuHighlighter;

impl Highlight for NuHighlighter {
    fn highlight(&self, text: &str) -> Vec<(Range<usize>, Style)> {
        use nu_parser::FlatShape;
        let state = crate::probes::front::engine::engine_state();
        let mut ws = StateWorkingSet::new(state);
        let base = ws.next_span_start();
        let block = nu_parser::parse(&mut ws, Some("highlight"), text.as_bytes(), false);
        nu_parser::flatten_block(&ws, &block)
            .into_iter()
            .filter_map(|(span, shape)| {
                let style = match shape {
                    FlatShape::InternalCall(_) | FlatShape::Keyword => Style::default()
                        .fg(Color::Cyan)
                        .add_modifier(Modifier::BOLD),
                    FlatShape::External(_) | FlatShape::ExternalArg => {
                        Style::default().fg(Color::Cyan)
                    }
                    FlatShape::String | FlatShape::RawString | FlatShape::StringInterpolation => {
                        Style::default().fg(Color::Green)
                    }
                    FlatShape::Int | FlatShape::Float | FlatShape::Bool => {
                        Style::default().fg(Color::LightMagenta)
                    }
                    FlatShape::Variable(_) | FlatShape::VarDecl(_) => {
                        Style::default().fg(Color::Magenta)
                    }
                    FlatShape::Operator => Style::default().fg(Color::Yellow),
                    FlatShape::Flag => Style::default().fg(Color::Blue),
                    FlatShape::Garbage => Style::default().fg(Color::Red),
                    _ => return None,
                };
                let start = span.start.checked_sub(base)?;
                let end = span.end.checked_sub(base)?.min(text.len());
                Some((start..end, style))
            })
            .collect()
    }
}

/// Completion from the probe language and the catalogue.
pub struct ProbeCompleter(pub Arc<Catalogue>);

impl Complete for ProbeCompleter {
    fn complete(&self, text: &str, cursor: usize) -> Vec<Suggestion> {
        complete::complete(text, cursor, &self.0)
            .into_iter()
            .map(|c| Suggestion {
                value: c.value,
                description: c.description,
                replace: c.replace,
            })
            .collect()
    }
}

/// Where the editor's history lives: the invoking user's data directory (under sudo, the
/// user who ran sudo).
pub fn history_file() -> Option<PathBuf> {
    let home = std::env::var_os("SUDO_USER")
        .and_then(|user| {
            // SAFETY: getpwnam returns a pointer into static storage or NULL.
            let name = std::ffi::CString::new(user.to_string_lossy().as_bytes()).ok()?;
            let pw = unsafe { libc::getpwnam(name.as_ptr()) };
            if pw.is_null() {
                return None;
            }
            let dir = unsafe { std::ffi::CStr::from_ptr((*pw).pw_dir) };
            Some(PathBuf::from(dir.to_string_lossy().into_owned()))
        })
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))?;
    let dir = std::env::var_os("XDG_DATA_HOME")
        .filter(|_| std::env::var_os("SUDO_USER").is_none())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".local/share"))
        .join("nubpf");
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.exists())
        .map(PathBuf::from)
        .collect();
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join("history.txt");
    // Under sudo, what we create in the user's home would belong to root, and a later run
    // without sudo could not write its history: give it to the user.
    if std::env::var_os("SUDO_USER").is_some() {
        let _ = crate::app::session::files::create_private(&file);
        for d in missing.iter().chain([&file]) {
            crate::app::session::files::chown_to_invoker(d);
        }
    }
    Some(file)
}

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATE.store(true, Ordering::Relaxed);
}

/// Restores the terminal when dropped.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> std::io::Result<TerminalGuard> {
        enable_raw_mode()?;
        execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
        Ok(TerminalGuard)
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), DisableMouseCapture, LeaveAlternateScreen);
    let _ = std::io::stdout().flush();
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Builds the workbench state for `text` (used by the binary and by screen tests).
pub fn new_app(
    text: &str,
    file: Option<PathBuf>,
    keymap: Keymap,
    catalogue: Arc<Catalogue>,
    history: Option<PathBuf>,
) -> App {
    let privileges = crate::app::privileges::check().err();
    let features = Features::detect();
    let mut editor = Editor::new(keymap, history)
        .with_highlighter(Box::new(NuHighlighter))
        .with_completer(Box::new(ProbeCompleter(catalogue)));
    editor.set_text(text);
    App::new(
        editor,
        file,
        Status {
            privileges: privileges.map(|p| p.lines().next().unwrap_or("").to_string()),
            kernel: features.release,
        },
    )
}

/// Runs the workbench until the user quits.
pub fn run(file: Option<PathBuf>, keymap: Keymap) -> ExitCode {
    let text = match &file {
        Some(path) if path.exists() => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("nubpf-tui: cannot read {}: {e}", path.display());
                return ExitCode::from(crate::app::run::exit::USAGE);
            }
        },
        _ => String::new(),
    };
    let features = Features::detect();
    if !features.tracefs && crate::app::privileges::check().is_ok() {
        let _ = crate::probes::runtime::features::mount_tracefs();
    }
    let catalogue = Arc::new(Catalogue::system());
    let mut app = new_app(&text, file, keymap, catalogue.clone(), history_file());

    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    let guard = match TerminalGuard::enter() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("nubpf-tui: cannot set up the terminal: {e}");
            return ExitCode::from(crate::app::run::exit::USAGE);
        }
    };
    let result = event_loop(&mut app, catalogue, None);
    drop(guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nubpf-tui: {e}");
            ExitCode::from(crate::app::run::exit::KERNEL)
        }
    }
}

/// Opens a recording in the workbench (no root needed): the views fill as it plays.
pub fn replay(path: &std::path::Path, speed: Option<f64>, keymap: Keymap) -> ExitCode {
    let playback = match crate::app::session::playback::load(path) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("nubpf-tui replay: {e}");
            return ExitCode::from(crate::app::run::exit::SCRIPT);
        }
    };
    let catalogue = Arc::new(Catalogue::system());
    let mut app = new_app(
        &playback.script,
        None,
        keymap,
        catalogue.clone(),
        history_file(),
    );
    app.status.kernel = format!("{} (recorded)", playback.kernel);
    app.status.privileges = Some("replay: nothing is attached".into());
    app.title = Some(format!("replay of {}", playback.path));
    app.export_header = crate::app::session::Recording::open(path).ok().map(|rec| {
        let text = crate::app::session::export::script_text(&rec);
        // Everything before the script itself.
        let script_at = text.find(rec.script().trim_end()).unwrap_or(text.len());
        text[..script_at].to_string()
    });
    app.start_replay(
        playback
            .probes
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.kind.clone(),
                    p.target.clone(),
                    p.pipeline.as_ref().map(|x| x.0.clone()),
                )
            })
            .collect(),
        playback.duration,
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    let guard = match TerminalGuard::enter() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("nubpf-tui: cannot set up the terminal: {e}");
            return ExitCode::from(crate::app::run::exit::USAGE);
        }
    };
    let result = event_loop(&mut app, catalogue, Some((playback, speed.or(Some(1.0)))));
    drop(guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nubpf-tui: {e}");
            ExitCode::from(crate::app::run::exit::USAGE)
        }
    }
}

struct Driver {
    events: Sender<Event>,
    records: std::sync::mpsc::SyncSender<Event>,
    compiler: Sender<(u64, String)>,
    /// The runtime and kernel facts, built off the UI thread.
    kernel: Arc<worker::Kernel>,
    /// Where probe threads copy their records while recording.
    tap: Arc<worker::RecordTap>,
    probes: HashMap<(String, u64), Sender<worker::Stop>>,
    /// Probe threads told to detach that have not reported back yet.
    detaching: usize,
    recording: Option<Recording>,
    /// Controls of a running replay.
    playback: Option<Sender<state::ReplayControl>>,
    _stats: Option<std::os::fd::OwnedFd>,
}

impl Driver {
    fn act(&mut self, app: &mut App, action: Action) {
        match action {
            Action::Compile { generation, source } => {
                let _ = self.compiler.send((generation, source));
            }
            Action::Attach {
                probe,
                generation,
                script,
                index,
            } => {
                if self._stats.is_none() {
                    self._stats = crate::probes::runtime::enable_stats();
                }
                let stop = worker::spawn_probe(
                    probe.clone(),
                    generation,
                    script,
                    index,
                    self.kernel.clone(),
                    self.tap.clone(),
                    self.events.clone(),
                    self.records.clone(),
                );
                self.probes.insert((probe, generation), stop);
            }
            Action::Detach { probe, generation } => {
                if let Some(stop) = self.probes.remove(&(probe, generation))
                    && stop.send(worker::Stop).is_ok()
                {
                    self.detaching += 1;
                }
            }
            Action::Save(path, text) => {
                if let Err(e) = crate::app::session::files::replace_private(&path, text.as_bytes())
                {
                    app.notify(format!("cannot save {}: {e}", path.display()));
                }
            }
            Action::StartRecording { path, script } => {
                let kernel = app.status.kernel.clone();
                match Recorder::create(&path, &script, &kernel) {
                    Ok(r) => {
                        let index: HashMap<String, usize> = script
                            .probes
                            .iter()
                            .enumerate()
                            .map(|(i, p)| (p.name.clone(), i))
                            .collect();
                        let recorder = Arc::new(r);
                        self.tap.start(recorder.clone(), index.clone());
                        self.recording = Some(Recording {
                            recorder,
                            index,
                            drops: HashMap::new(),
                            dropped: 0,
                        });
                    }
                    Err(e) => {
                        app.recording = None;
                        app.notify(format!("cannot record: {e}"));
                    }
                }
            }
            Action::StopRecording => self.stop_recording(),
            Action::WriteFile(path, bytes) => {
                match crate::app::session::files::write_private(&path, &bytes) {
                    Ok(()) => app.notify(format!("wrote {}", path.display())),
                    Err(e) => app.notify(format!("cannot write: {e}")),
                }
            }
            Action::Plot(base, data) => {
                let events = self.events.clone();
                std::thread::spawn(move || {
                    let mut written = Vec::new();
                    for ext in ["svg", "png"] {
                        let path = base.with_extension(ext);
                        match crate::app::session::plot::write(&data, &path) {
                            Ok(()) => written.push(path.display().to_string()),
                            Err(e) => {
                                let _ = events.send(Event::Notice(format!("cannot plot: {e}")));
                                return;
                            }
                        }
                    }
                    let _ = events.send(Event::Notice(format!("wrote {}", written.join(" and "))));
                });
            }
            Action::Replay(control) => {
                if let Some(tx) = &self.playback {
                    let _ = tx.send(control);
                }
            }
            Action::Quit => self.stop_recording(),
        }
    }

    /// Finishes the recording off the UI thread; the result comes back as a notice.
    fn stop_recording(&mut self) {
        let Some(rec) = self.recording.take() else {
            return;
        };
        self.tap.stop();
        let events = self.events.clone();
        std::thread::spawn(move || {
            let dropped = rec.dropped;
            let text = match worker::finish_recording(rec.recorder) {
                Ok(n) if dropped > 0 => format!(
                    "recorded {n} records ({dropped} aggregation snapshots or loss counts not kept: the writer fell behind)"
                ),
                Ok(n) => format!("recorded {n} records"),
                Err(e) => format!("the recording is incomplete: {e}"),
            };
            let _ = events.send(Event::Notice(text));
        });
    }

    /// Copies aggregation snapshots and losses into the recording, without ever blocking
    /// (records go there straight from the probe threads, see `worker::RecordTap`).
    fn record(&mut self, ev: &Event) {
        let Some(rec) = &mut self.recording else {
            return;
        };
        match ev {
            Event::Stats {
                probe,
                kernel_drops: drops,
                ..
            } => {
                // Losses in the kernel as they grow, like `run --record` (records the UI
                // could not take are still recorded).
                if let Some(&index) = rec.index.get(probe) {
                    let before = rec.drops.insert(probe.clone(), *drops).unwrap_or(0);
                    if *drops > before {
                        let item = Item::Lost {
                            at: rec.recorder.now(),
                            probe: index,
                            lost: drops - before,
                        };
                        if !rec.recorder.try_write(item) {
                            rec.dropped += 1;
                        }
                    }
                }
            }
            Event::Aggregates {
                probe, snapshots, ..
            } => {
                if let Some(&index) = rec.index.get(probe) {
                    let item = Item::Aggregates {
                        at: rec.recorder.now(),
                        probe: index,
                        snapshots: snapshots.iter().map(|(_, s)| s.clone()).collect(),
                    };
                    if !rec.recorder.try_write(item) {
                        rec.dropped += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

/// A recording the workbench is writing.
struct Recording {
    recorder: Arc<Recorder>,
    /// Probe name → its index in the recorded script.
    index: HashMap<String, usize>,
    /// Losses already written, per probe.
    drops: HashMap<String, u64>,
    dropped: u64,
}

/// A recording to play instead of attaching, and its speed.
type ReplayInput = (Arc<crate::app::session::playback::Playback>, Option<f64>);

fn event_loop(
    app: &mut App,
    catalogue: Arc<Catalogue>,
    replay: Option<ReplayInput>,
) -> std::io::Result<()> {
    // A fixed viewport resized on resize events: asking the terminal for its size every frame
    // opens /dev/tty, which a probe on `openat` would see twenty times a second.
    let (w, h) = crossterm::terminal::size()?;
    let mut terminal = Terminal::with_options(
        CrosstermBackend::new(std::io::stdout()),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, h)),
        },
    )?;
    let (events_tx, events_rx) = std::sync::mpsc::channel::<Event>();
    // Records are bounded: a flood fills this, and the probe threads count what they drop.
    let (records_tx, records_rx) = std::sync::mpsc::sync_channel::<Event>(256);
    let mut driver = Driver {
        compiler: worker::spawn_compiler(catalogue, events_tx.clone()),
        events: events_tx,
        records: records_tx,
        kernel: Arc::default(),
        tap: Arc::default(),
        probes: HashMap::new(),
        detaching: 0,
        recording: None,
        playback: None,
        _stats: None,
    };
    if replay.is_none() && crate::app::privileges::check().is_ok() {
        driver.kernel.warm_up();
    }
    if let Some((playback, speed)) = replay {
        driver.playback = Some(worker::spawn_playback(
            playback,
            speed,
            driver.events.clone(),
            driver.records.clone(),
        ));
    }
    if app.replay.is_none() {
        for a in app.start() {
            driver.act(app, a);
        }
    }
    let mut last_tick = Instant::now();
    loop {
        terminal.draw(|frame| render::draw(frame, app))?;
        let deadline = Instant::now() + Duration::from_millis(50);
        // Input first: keys never wait behind a flood of records.
        while event::poll(deadline.saturating_duration_since(Instant::now()))? {
            let ev = match event::read()? {
                TermEvent::Key(k) if k.kind == crossterm::event::KeyEventKind::Press => {
                    Event::Key(k)
                }
                TermEvent::Mouse(m) => Event::Mouse(m),
                TermEvent::Resize(w, h) => {
                    terminal.resize(ratatui::layout::Rect::new(0, 0, w, h))?;
                    Event::Resize(w, h)
                }
                _ => continue,
            };
            for a in app.update(ev) {
                driver.act(app, a);
            }
            if app.quit || Instant::now() >= deadline {
                break;
            }
        }
        if TERMINATE.load(Ordering::Relaxed) && !app.quit {
            let ctrl_q = crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('q'),
                crossterm::event::KeyModifiers::CONTROL,
            );
            for a in app.update(Event::Key(ctrl_q)) {
                driver.act(app, a);
            }
        }
        if app.quit {
            break;
        }
        let budget = Instant::now() + Duration::from_millis(15);
        while let Ok(ev) = events_rx.try_recv() {
            if matches!(ev, Event::Detached { .. }) {
                driver.detaching = driver.detaching.saturating_sub(1);
            }
            if matches!(ev, Event::Attached { result: Ok(_), .. }) {
                crate::app::test_panic("attached");
            }
            driver.record(&ev);
            for a in app.update(ev) {
                driver.act(app, a);
            }
        }
        while Instant::now() < budget {
            let Ok(ev) = records_rx.try_recv() else { break };
            driver.record(&ev);
            for a in app.update(ev) {
                driver.act(app, a);
            }
        }
        if last_tick.elapsed() >= Duration::from_millis(250) {
            last_tick = Instant::now();
            app.update(Event::Tick);
        }
    }
    // Detach everything before leaving: each probe thread detaches and reports. (Were the
    // process to die first, the kernel would still release the programs with their fds.)
    for (_, stop) in driver.probes.drain() {
        if stop.send(worker::Stop).is_ok() {
            driver.detaching += 1;
        }
    }
    // A recording in progress is finished synchronously: the process is about to exit.
    driver.tap.stop();
    if let Some(rec) = driver.recording.take() {
        let _ = worker::finish_recording(rec.recorder);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while driver.detaching > 0 && Instant::now() < deadline {
        if let Ok(Event::Detached { .. }) = events_rx.recv_timeout(Duration::from_millis(100)) {
            driver.detaching -= 1;
        }
        while records_rx.try_recv().is_ok() {}
    }
    Ok(())
}
