//! Workbench measurements shared by `benches/tui.rs` and `benches/compare.rs`: frame render
//! time and memory with 1 M buffered rows, and keystroke → diagnostic latency.
#![allow(dead_code)] // each bench uses a part

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nubpf_tui::app::workbench::state::{Action, App, Event, Status};
use nubpf_tui::app::workbench::{NuHighlighter, ProbeCompleter, render, worker};
use nubpf_tui::editor::{Editor, Keymap};
use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::runtime::decode::Value;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The probe a user typically writes first, typed from an empty editor in the typing figure.
pub const TYPICAL_EDIT: &str = r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.filename starts-with "/etc" { count --by $e.comm } }"#;

/// Resident memory of this process in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The element at `q` (0..=1) of the sorted values.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn app(catalogue: Arc<Catalogue>, text: &str) -> App {
    let mut editor = Editor::new(Keymap::Emacs, None)
        .with_highlighter(Box::new(NuHighlighter))
        .with_completer(Box::new(ProbeCompleter(catalogue)));
    editor.set_text(text);
    App::new(
        editor,
        None,
        Status {
            privileges: None,
            kernel: "bench".into(),
        },
    )
}

/// What the workbench costs with a million rows in one probe's tab.
pub struct MillionRows {
    pub ingest: Duration,
    /// Resident memory added by the rows, MiB.
    pub added_mib: f64,
    /// Resident memory of the whole process afterwards, MiB.
    pub resident_mib: f64,
    /// Render times of 200 frames (160×48, following the newest rows).
    pub frames: Vec<Duration>,
}

pub fn million_rows(catalogue: Arc<Catalogue>) -> MillionRows {
    let text = r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {pid: $e.pid, comm: $e.comm, file: $e.filename} }"#;
    let mut a = app(catalogue.clone(), text);
    let Some(Action::Compile { generation, source }) = a.start().into_iter().next() else {
        panic!("the workbench did not ask for a compile")
    };
    let (script, diagnostics) = nubpf_tui::probes::front::compile(&source, &catalogue);
    a.update(Event::Compiled {
        generation,
        script: script.map(Arc::new),
        diagnostics,
        took: Duration::ZERO,
    });
    let actions = a.update(Event::Key(KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE)));
    let Some(Action::Attach {
        probe, generation, ..
    }) = actions
        .into_iter()
        .find(|a| matches!(a, Action::Attach { .. }))
    else {
        panic!("F5 did not attach (is the tracepoint catalogue readable?)")
    };
    let before = rss_mib();
    let columns = vec!["pid".to_string(), "comm".into(), "file".into()];
    let started = Instant::now();
    for chunk in 0..1000u64 {
        let records = (0..1000u64)
            .map(|i| {
                let n = chunk * 1000 + i;
                vec![
                    Value::UInt(1000 + n % 50_000),
                    Value::Str(["bash", "cat", "systemd-journal"][(n % 3) as usize].into()),
                    Value::Str(format!("/usr/lib/x86_64-linux-gnu/lib{n}.so")),
                ]
            })
            .collect();
        a.update(Event::Records {
            probe: probe.clone(),
            generation,
            columns: columns.clone(),
            records,
        });
    }
    let ingest = started.elapsed();
    let resident_mib = rss_mib();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("test terminal");
    let frames = (0..200)
        .map(|_| {
            let t = Instant::now();
            terminal
                .draw(|f| render::draw(f, &mut a))
                .expect("draw a frame");
            t.elapsed()
        })
        .collect();
    MillionRows {
        ingest,
        added_mib: resident_mib - before,
        resident_mib,
        frames,
    }
}

/// How the keystrokes of the typing figure are made.
#[derive(Clone, Copy)]
pub enum Typing {
    /// Type `TYPICAL_EDIT` from an empty editor, one character per keystroke.
    TypicalEdit,
    /// In the finished probe, alternately break and fix a field name (`x`, Backspace) 100
    /// times: every keystroke changes the diagnostics.
    BreakAndFix,
}

/// Latency from each keystroke to its diagnostic drawn: background compile plus a frame.
pub fn keystrokes(catalogue: Arc<Catalogue>, typing: Typing) -> Vec<Duration> {
    let (events_tx, events_rx) = std::sync::mpsc::channel();
    let compiler = worker::spawn_compiler(catalogue.clone(), events_tx);
    let keys: Vec<KeyCode> = match typing {
        Typing::TypicalEdit => TYPICAL_EDIT.chars().map(KeyCode::Char).collect(),
        Typing::BreakAndFix => (0..100)
            .map(|i| {
                if i % 2 == 0 {
                    KeyCode::Char('x')
                } else {
                    KeyCode::Backspace
                }
            })
            .collect(),
    };
    let start_text = match typing {
        Typing::TypicalEdit => "",
        Typing::BreakAndFix => TYPICAL_EDIT,
    };
    let mut a = app(catalogue, start_text);
    let mut terminal = Terminal::new(TestBackend::new(120, 36)).expect("test terminal");
    // Sends the workbench's compile requests; waits for the newest one's result.
    let settle = |a: &mut App, actions: Vec<Action>| {
        let mut asked = false;
        for act in actions {
            if let Action::Compile { generation, source } = act {
                compiler
                    .send((generation, source))
                    .expect("compiler thread");
                asked = true;
            }
        }
        while asked {
            let ev = events_rx.recv().expect("compiler thread");
            let done = matches!(ev, Event::Compiled { generation, .. } if generation == a.compile_generation);
            a.update(ev);
            asked = !done;
        }
    };
    // Warm up the engine state and the catalogue.
    let actions = a.start();
    settle(&mut a, actions);
    keys.into_iter()
        .map(|key| {
            let t = Instant::now();
            let actions = a.update(Event::Key(KeyEvent::new(key, KeyModifiers::NONE)));
            settle(&mut a, actions);
            terminal
                .draw(|f| render::draw(f, &mut a))
                .expect("draw a frame");
            t.elapsed()
        })
        .collect()
}
