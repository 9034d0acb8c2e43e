//! Workbench benchmarks: frame render time and memory with 1 M buffered rows, and the
//! latency from a keystroke to its diagnostic on screen (background compile included).
//! Run with `cargo bench --bench tui` (root for the tracepoint catalogue).

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

fn rss_mib() -> f64 {
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
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

fn render_with_a_million_rows(catalogue: Arc<Catalogue>) {
    let text = r#"bpf_kprobe "do_sys_open" {|ctx| emit {pid: $ctx.pid, comm: $ctx.comm, file: $ctx.filename} }"#;
    let mut a = app(catalogue.clone(), text);
    let Some(Action::Compile { generation, source }) = a.start().into_iter().next() else {
        panic!()
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
        panic!("no attach")
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
    let after = rss_mib();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let times: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            terminal.draw(|f| render::draw(f, &mut a)).unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "1 000 000 rows buffered: ingest {ingest:.2?} ({:.0} k rows/s), resident memory +{:.0} MiB ({:.0} bytes/row)",
        1e3 / ingest.as_secs_f64(),
        after - before,
        (after - before) * 1048576.0 / 1e6
    );
    println!(
        "frame render (160x48, following the newest rows): median {:?}",
        median(times)
    );
}

fn keystroke_to_diagnostic(catalogue: Arc<Catalogue>) {
    let (events_tx, events_rx) = std::sync::mpsc::channel();
    let compiler = worker::spawn_compiler(catalogue.clone(), events_tx);
    let base = r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.filename starts-with "/etc" { count --by $e.comm } }"#;
    let mut a = app(catalogue, base);
    // Warm up the engine state and the catalogue.
    for act in a.start() {
        if let Action::Compile { generation, source } = act {
            compiler.send((generation, source)).unwrap();
        }
    }
    let _ = events_rx.recv();
    let mut terminal = Terminal::new(TestBackend::new(120, 36)).unwrap();
    let mut times = Vec::new();
    for i in 0..100 {
        // Alternate breaking and fixing the field name: every keystroke changes diagnostics.
        let key = if i % 2 == 0 {
            KeyCode::Char('x')
        } else {
            KeyCode::Backspace
        };
        let t = Instant::now();
        for act in a.update(Event::Key(KeyEvent::new(key, KeyModifiers::NONE))) {
            if let Action::Compile { generation, source } = act {
                compiler.send((generation, source)).unwrap();
            }
        }
        loop {
            let ev = events_rx.recv().unwrap();
            let done = matches!(ev, Event::Compiled { generation, .. } if generation == a.compile_generation);
            a.update(ev);
            if done {
                break;
            }
        }
        terminal.draw(|f| render::draw(f, &mut a)).unwrap();
        times.push(t.elapsed());
    }
    println!(
        "keystroke -> diagnostic drawn (background compile + frame): median {:?}, p90 {:?}",
        median(times.clone()),
        {
            let mut t = times;
            t.sort();
            t[t.len() * 9 / 10]
        }
    );
}

fn main() {
    let catalogue = Arc::new(Catalogue::system());
    render_with_a_million_rows(catalogue.clone());
    keystroke_to_diagnostic(catalogue);
}
