//! Workbench screens with ratatui's `TestBackend` at fixed sizes (insta snapshots), driven by
//! scripted events instead of the kernel, plus completion candidates of the editor.
//! Update snapshots with `INSTA_UPDATE=always cargo test --test tui`.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nubpf_tui::app::workbench::render;
use nubpf_tui::app::workbench::state::{Action, App, Event, Status};
use nubpf_tui::app::workbench::{NuHighlighter, ProbeCompleter};
use nubpf_tui::editor::{Editor, Keymap};
use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front;
use nubpf_tui::probes::front::complete::complete;
use nubpf_tui::probes::runtime::decode::Value;
use nubpf_tui::probes::runtime::maps::{AggEntry, AggSnapshot, Merged};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;

fn catalogue() -> Arc<Catalogue> {
    static CATALOGUE: std::sync::OnceLock<Arc<Catalogue>> = std::sync::OnceLock::new();
    CATALOGUE
        .get_or_init(|| Arc::new(Catalogue::system()))
        .clone()
}

fn app(text: &str) -> App {
    let mut editor = Editor::new(Keymap::Emacs, None)
        .with_highlighter(Box::new(NuHighlighter))
        .with_completer(Box::new(ProbeCompleter(catalogue())));
    editor.set_text(text);
    App::new(
        editor,
        Some("probes.nu".into()),
        Status {
            privileges: None,
            kernel: "6.18-test".into(),
        },
    )
}

/// Compiles an edit's text, as the background compiler would.
fn compile_pending(a: &mut App, edit: Vec<Action>) {
    let Some(Action::Compile { generation, source }) = edit.into_iter().next() else {
        panic!("no compile action");
    };
    let (script, diagnostics) = front::compile(&source, &catalogue());
    a.update(Event::Compiled {
        generation,
        script: script.map(Arc::new),
        diagnostics,
        took: Duration::from_micros(420),
    });
}

/// Compiles the editor's text synchronously, as the background compiler would.
fn compile(app: &mut App) {
    let actions = app.start();
    compile_pending(app, actions);
}

fn screen(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| render::draw(f, app)).unwrap();
    terminal
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Presses F5 and returns the probe and generation the workbench asks the driver to attach.
fn press_f5(app: &mut App) -> (String, u64) {
    let actions = app.update(key(KeyCode::F(5)));
    let Some(Action::Attach {
        probe, generation, ..
    }) = actions
        .into_iter()
        .find(|a| matches!(a, Action::Attach { .. }))
    else {
        panic!("F5 did not attach");
    };
    (probe, generation)
}

/// Attaches probe 0 as the driver would report it.
fn attach(app: &mut App) -> (String, u64) {
    let (probe, generation) = press_f5(app);
    app.update(Event::Attached {
        probe: probe.clone(),
        generation,
        result: Ok(Duration::from_micros(1500)),
        insns: 42,
        mechanism: None,
    });
    (probe, generation)
}

const OPENAT: &str = r#"bpf_kprobe "do_sys_open" {|ctx| emit {pid: $ctx.pid, comm: $ctx.comm, file: $ctx.filename} }"#;

#[test]
fn start_screen() {
    let mut a = app("");
    compile(&mut a);
    insta::assert_snapshot!(screen(&mut a, 120, 32).backend());
}

#[test]
fn compile_error_is_underlined_and_explained() {
    let mut a = app(r#"bpf_kprobe "do_sys_open" {|ctx| emit $ctx.filenam }"#);
    compile(&mut a);
    let t = screen(&mut a, 120, 32);
    // The unknown field is underlined in the editor: `filenam` starts at column 1 + 4 (gutter)
    // + its offset in the line.
    let offset = 42u16;
    let (x, y) = (1 + 4 + offset, 2);
    let cell = &t.backend().buffer()[(x, y)];
    assert_eq!(cell.symbol(), "f");
    assert!(cell.modifier.contains(Modifier::UNDERLINED), "{cell:?}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn attached_probe_streams_rows() {
    let mut a = app(OPENAT);
    compile(&mut a);
    let (probe, generation) = attach(&mut a);
    let columns = vec!["pid".to_string(), "comm".into(), "file".into()];
    for i in 0..30u64 {
        a.update(Event::Records {
            probe: probe.clone(),
            generation,
            columns: columns.clone(),
            records: vec![vec![
                Value::UInt(1000 + i % 3),
                Value::Str(["bash", "cat", "systemd-journal"][(i % 3) as usize].into()),
                Value::Str(format!("/etc/file-{i}.conf")),
            ]],
        });
    }
    a.update(Event::Stats {
        probe,
        generation,
        hits: 30,
        drops: 0,
        kernel_drops: 0,
    });
    insta::assert_snapshot!(screen(&mut a, 120, 32).backend());
}

fn histogram_app() -> App {
    let mut a = app(r#"bpf_kretprobe "vfs_read" {|ctx| hist $ctx.retval }"#);
    compile(&mut a);
    let layout = a.script.as_ref().unwrap().compiled.aggregations[0].clone();
    let (probe, generation) = attach(&mut a);
    let entries = [(1u64, 3u64), (2, 10), (3, 25), (4, 60), (5, 12), (8, 2)]
        .into_iter()
        .map(|(b, c)| AggEntry {
            key: vec![],
            bucket: Some(b),
            value: Merged::Count(c),
        })
        .collect();
    a.update(Event::Aggregates {
        probe,
        generation,
        snapshots: vec![(
            layout,
            AggSnapshot {
                name: "hist_retval".into(),
                kind: nubpf_ebpf::ir::AggKind::Hist,
                entries,
            },
        )],
    });
    a
}

#[test]
fn histogram_tab() {
    let mut a = histogram_app();
    insta::assert_snapshot!(screen(&mut a, 120, 32).backend());
}

#[test]
fn keyed_aggregations_sorted_by_value() {
    let mut a = app(r#"bpf_kprobe "vfs_read" {|ctx| count --by $ctx.comm }"#);
    compile(&mut a);
    let layout = a.script.as_ref().unwrap().compiled.aggregations[0].clone();
    let (probe, generation) = attach(&mut a);
    let entries = [("bash", 5u64), ("cat", 50), ("sshd", 12)]
        .into_iter()
        .map(|(k, c)| AggEntry {
            key: vec![Value::Str(k.into())],
            bucket: None,
            value: Merged::Count(c),
        })
        .collect();
    a.update(Event::Aggregates {
        probe,
        generation,
        snapshots: vec![(
            layout,
            AggSnapshot {
                name: "count".into(),
                kind: nubpf_ebpf::ir::AggKind::Count,
                entries,
            },
        )],
    });
    let t = screen(&mut a, 100, 30);
    let text = format!("{:?}", t.backend());
    let (cat, sshd, bash) = (
        text.find("cat ").unwrap(),
        text.find("sshd").unwrap(),
        text.find("bash").unwrap(),
    );
    assert!(cat < sshd && sshd < bash, "largest first");
}

#[test]
fn pipeline_tab() {
    let mut a = app(
        r#"bpf_kprobe "vfs_read" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid --to-table | each {|g| {pid: $g.pid, count: ($g.items | length)}}"#,
    );
    compile(&mut a);
    let (probe, generation) = attach(&mut a);
    let result = || {
        Ok((
            vec!["pid".into(), "count".into()],
            vec![
                vec!["1234".into(), "17".into()],
                vec!["4321".into(), "3".into()],
            ],
        ))
    };
    a.update(Event::PipelineResult {
        probe: probe.clone(),
        generation,
        result: result(),
        window: None,
    });
    // Records tab first, then the pipeline tab.
    a.update(key(KeyCode::F(4)));
    a.update(key(KeyCode::Right));
    insta::assert_snapshot!(screen(&mut a, 120, 32).backend());

    // Once older records fall out of the live window, the tab says so.
    a.update(Event::PipelineResult {
        probe,
        generation,
        result: result(),
        window: Some((10_000, 2_345)),
    });
    let shown = text(&screen(&mut a, 160, 32));
    assert!(
        shown.contains("over the newest 10000 records, 2345 older left out"),
        "{shown}"
    );
}

#[test]
fn help_overlay() {
    let mut a = app(OPENAT);
    compile(&mut a);
    a.update(key(KeyCode::F(1)));
    insta::assert_snapshot!(screen(&mut a, 100, 30).backend());
}

#[test]
fn small_terminal_80x24() {
    let mut a = histogram_app();
    insta::assert_snapshot!(screen(&mut a, 80, 24).backend());
}

#[test]
fn typing_recompiles_and_reports() {
    let mut a = app("");
    let actions = a.update(Event::Key(KeyEvent::new(
        KeyCode::Char('b'),
        KeyModifiers::NONE,
    )));
    assert!(matches!(actions.as_slice(), [Action::Compile { source, .. }] if source == "b"));
}

#[test]
fn without_privileges_attaching_says_what_is_missing() {
    let mut editor = Editor::new(Keymap::Emacs, None);
    editor.set_text(OPENAT);
    let mut a = App::new(
        editor,
        None,
        Status {
            privileges: Some("loading probes needs root or CAP_BPF and CAP_PERFMON".into()),
            kernel: "test".into(),
        },
    );
    compile(&mut a);
    let actions = a.update(key(KeyCode::F(5)));
    assert!(actions.is_empty());
    assert!(a.notice.as_ref().unwrap().0.contains("CAP_BPF"));
}

fn names(text: &str) -> Vec<String> {
    let cursor = text.find('‸').expect("cursor marker");
    let text = text.replace('‸', "");
    complete(&text, cursor, &catalogue())
        .into_iter()
        .map(|c| c.value)
        .collect()
}

#[test]
fn completes_tracepoint_fields_after_ctx() {
    if !nubpf_tui_test_tracefs() {
        return;
    }
    let got = names(r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit $e.‸ }"#);
    for field in ["filename", "flags", "mode", "dfd", "pid", "comm"] {
        assert!(
            got.iter().any(|g| g == field),
            "{field} missing from {got:?}"
        );
    }
    let got = names(r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit $e.fil‸ }"#);
    assert_eq!(got, ["filename"]);
}

#[test]
fn completes_kprobe_parameters_and_struct_members() {
    let got = names(r#"bpf_kprobe "do_sys_open" {|ctx| emit $ctx.‸ }"#);
    for field in ["dfd", "filename", "flags", "mode", "arg0", "pid"] {
        assert!(
            got.iter().any(|g| g == field),
            "{field} missing from {got:?}"
        );
    }
    let got = names(r#"bpf_kprobe "vfs_read" {|ctx| emit $ctx.file.f_fl‸ }"#);
    assert_eq!(got, ["f_flags"]);
}

#[test]
fn completes_targets_and_commands() {
    let got = names(r#"bpf_kprobe "do_sys_ope‸"#);
    assert!(got.iter().any(|g| g == "do_sys_open"), "{got:?}");
    let got = names("bpf_kpr‸");
    assert!(got.iter().any(|g| g == "bpf_kprobe"), "{got:?}");
    let got = names(r#"bpf_kprobe "vfs_read" {|ctx| cou‸ }"#);
    assert_eq!(got, ["count"]);
    let got = names(r#"bpf_uprobe "/bin/bash" "readl‸"#);
    assert!(got.iter().any(|g| g == "readline"), "{got:?}");
}

/// Tracepoint formats need a readable tracefs (root here).
fn nubpf_tui_test_tracefs() -> bool {
    if std::path::Path::new("/sys/kernel/tracing/events/syscalls").is_dir() {
        return true;
    }
    if std::env::var("NUBPF_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("tracefs is not readable");
    }
    eprintln!("skipping: tracefs is not readable (needs root)");
    false
}

#[test]
fn verifier_rejection_after_attach_is_shown_on_its_span() {
    let mut a = app(OPENAT);
    compile(&mut a);
    let (probe, generation) = press_f5(&mut a);
    let span = nubpf_ebpf::Span::new(37, 44);
    a.update(Event::Attached {
        probe,
        generation,
        result: Err(nubpf_tui::app::workbench::state::AttachFailure::from(
            nubpf_tui::probes::front::Diagnostic::error(
                "verifier",
                "the verifier rejected it: invalid mem access",
                span,
            ),
        )),
        insns: 0,
        mechanism: None,
    });
    let d = a
        .diagnostics
        .iter()
        .find(|d| d.code == "nubpf::verifier")
        .expect("diagnostic");
    assert_eq!(d.span, span);
    let t = screen(&mut a, 120, 32);
    let cell = &t.backend().buffer()[(1 + 4 + 37, 2)];
    assert!(cell.modifier.contains(Modifier::UNDERLINED), "{cell:?}");
    assert!(format!("{:?}", t.backend()).contains("invalid mem access"));
}

#[test]
fn f9_starts_and_stops_recording() {
    let mut a = app(OPENAT);
    compile(&mut a);
    let actions = a.update(key(KeyCode::F(9)));
    assert!(
        matches!(actions.as_slice(), [Action::StartRecording { path, .. }] if path.to_string_lossy().ends_with(".db"))
    );
    assert!(a.recording.is_some());
    let actions = a.update(key(KeyCode::F(9)));
    assert!(matches!(actions.as_slice(), [Action::StopRecording]));
    assert!(a.recording.is_none());
}

#[test]
fn x_exports_the_histogram_as_a_plot_and_tables_as_csv() {
    let mut a = histogram_app();
    a.update(key(KeyCode::F(4)));
    let actions = a.update(key(KeyCode::Char('x')));
    let [Action::Plot(base, nubpf_tui::app::session::plot::PlotData::Histogram { bars, .. })] =
        actions.as_slice()
    else {
        panic!("{actions:?}");
    };
    assert!(base.to_string_lossy().contains("hist_retval"));
    assert_eq!(bars.first(), Some(&("[0]".to_string(), 3)));
    assert_eq!(
        bars.iter().map(|b| b.1).sum::<u64>(),
        3 + 10 + 25 + 60 + 12 + 2
    );

    let mut a = app(OPENAT);
    compile(&mut a);
    let (probe, generation) = attach(&mut a);
    a.update(Event::Records {
        probe,
        generation,
        columns: vec!["pid".into(), "file".into()],
        records: vec![vec![Value::UInt(7), Value::Str("/a,b".into())]],
    });
    a.update(key(KeyCode::F(4)));
    let actions = a.update(key(KeyCode::Char('x')));
    let [Action::WriteFile(path, bytes)] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    assert!(path.to_string_lossy().ends_with(".csv"));
    assert_eq!(String::from_utf8_lossy(bytes), "pid,file\n7,\"/a,b\"\n");
}

#[test]
fn replay_keys_pause_seek_and_change_speed() {
    let mut a = app(OPENAT);
    a.start_replay(
        vec![("p".into(), "tracepoint".into(), "t".into(), None)],
        100_000_000_000,
    );
    let control = |a: &mut App, code| match a.update(key(code)).as_slice() {
        [Action::Replay(c)] => format!("{c:?}"),
        other => panic!("{other:?}"),
    };
    assert_eq!(control(&mut a, KeyCode::F(5)), "TogglePause");
    assert_eq!(control(&mut a, KeyCode::F(7)), "Seek(-5000000000)");
    assert_eq!(control(&mut a, KeyCode::F(8)), "Seek(5000000000)");
    assert_eq!(control(&mut a, KeyCode::F(12)), "Speed(Some(2.0))");
}

#[test]
fn x_on_records_also_plots_events_per_second() {
    let mut a = app(OPENAT);
    compile(&mut a);
    let (probe, generation) = attach(&mut a);
    for _ in 0..2 {
        a.update(Event::Records {
            probe: probe.clone(),
            generation,
            columns: vec!["pid".into()],
            records: vec![vec![Value::UInt(1)]; 10],
        });
        std::thread::sleep(Duration::from_millis(1050));
        a.update(Event::Tick);
    }
    a.update(key(KeyCode::F(4)));
    let actions = a.update(key(KeyCode::Char('x')));
    assert!(
        matches!(actions.as_slice(), [Action::WriteFile(..), Action::Plot(_, nubpf_tui::app::session::plot::PlotData::Rate { points, .. })] if points.len() == 2)
    );
}

#[test]
fn help_lists_every_key_at_80x24() {
    let mut a = app(OPENAT);
    compile(&mut a);
    a.update(key(KeyCode::F(1)));
    let t = screen(&mut a, 80, 24);
    let text = format!("{:?}", t.backend());
    for (k, v) in nubpf_tui::views::KEYS {
        assert!(text.contains(k), "{k} missing:\n{text}");
        assert!(text.contains(v), "{k}: `{v}` not whole:\n{text}");
    }
    insta::assert_snapshot!(t.backend());
}

const TWO_PROBES: &str = "bpf_tracepoint \"syscalls:sys_enter_openat\" {|e| emit {file: $e.filename} }\nbpf_tracepoint \"syscalls:sys_enter_close\" {|e| count }";

fn rows(a: &mut App, probe: &str, generation: u64, range: std::ops::Range<u64>) {
    for i in range {
        a.update(Event::Records {
            probe: probe.to_string(),
            generation,
            columns: vec!["file".into()],
            records: vec![vec![Value::Str(format!("/f{i}"))]],
        });
    }
}

fn text(t: &Terminal<TestBackend>) -> String {
    let b = t.backend().buffer();
    (0..b.area.height)
        .map(|y| {
            (0..b.area.width)
                .map(|x| b[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pause_holds_the_view_keeps_the_rows_and_resume_follows_again() {
    if !nubpf_tui_test_tracefs() {
        return;
    }
    let mut a = app(TWO_PROBES);
    compile(&mut a);
    let (probe, generation) = attach(&mut a);
    rows(&mut a, &probe, generation, 0..10);
    a.update(key(KeyCode::F(4)));
    a.update(key(KeyCode::Char('p')));
    assert!(a.paused);
    rows(&mut a, &probe, generation, 10..40);
    let paused = text(&screen(&mut a, 120, 32));
    // The view still ends at the last row seen before pausing; nothing was thrown away.
    assert!(
        paused.contains("/f9 ") && !paused.contains("/f39"),
        "{paused}"
    );
    assert!(
        paused.contains("40 rows shown of 40 received · paused"),
        "{paused}"
    );
    a.update(key(KeyCode::Char(' ')));
    assert!(!a.paused);
    let resumed = text(&screen(&mut a, 120, 32));
    assert!(
        resumed.contains("/f39") && resumed.contains("following"),
        "{resumed}"
    );

    // Scrolled back, the view holds still too while rows arrive.
    a.update(key(KeyCode::Up));
    a.update(key(KeyCode::Up));
    let before = text(&screen(&mut a, 120, 32));
    rows(&mut a, &probe, generation, 40..45);
    let after = text(&screen(&mut a, 120, 32));
    let table = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains("/f"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(table(&before), table(&after));
    assert!(after.contains("scrolled"), "{after}");
    a.update(key(KeyCode::End));
    assert!(text(&screen(&mut a, 120, 32)).contains("/f44"));

    // `c` clears the table; counts stay.
    a.update(key(KeyCode::Char('c')));
    let cleared = text(&screen(&mut a, 120, 32));
    assert!(!cleared.contains("/f44"), "{cleared}");
    assert!(cleared.contains("0 rows shown of 45 received"), "{cleared}");
}

#[test]
fn attach_all_detach_one_detach_all_and_reattach_an_edited_probe() {
    if !nubpf_tui_test_tracefs() {
        return;
    }
    let mut a = app(TWO_PROBES);
    compile(&mut a);
    let attached = a.update(key(KeyCode::F(6)));
    let names: Vec<(String, u64)> = attached
        .iter()
        .filter_map(|x| match x {
            Action::Attach {
                probe, generation, ..
            } => Some((probe.clone(), *generation)),
            _ => None,
        })
        .collect();
    assert_eq!(
        names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["sys_enter_openat", "sys_enter_close"]
    );
    for (probe, generation) in &names {
        a.update(Event::Attached {
            probe: probe.clone(),
            generation: *generation,
            result: Ok(Duration::from_millis(2)),
            insns: 20,
            mechanism: None,
        });
    }
    // F7 in the editor detaches the probe under the cursor (the first line).
    let detached = a.update(key(KeyCode::F(7)));
    assert!(
        matches!(detached.as_slice(), [Action::Detach { probe, .. }] if probe == "sys_enter_openat"),
        "{detached:?}"
    );
    a.update(Event::Detached {
        probe: names[0].0.clone(),
        generation: names[0].1,
    });
    // Editing the other probe and pressing F5 on it replaces the attached one: the old
    // generation detaches, the new one attaches, the first probe is not touched.
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::End));
    let edit = a.update(key(KeyCode::Char(' ')));
    compile_pending(&mut a, edit);
    let again = a.update(key(KeyCode::F(5)));
    let detach: Vec<_> = again
        .iter()
        .filter_map(|x| match x {
            Action::Detach { probe, generation } => Some((probe.clone(), *generation)),
            _ => None,
        })
        .collect();
    assert_eq!(
        detach,
        vec![names[1].clone()],
        "{again:?} {:?} {:?} {:?}",
        a.focus,
        a.notice,
        a.editor.text()
    );
    let new_generation = again.iter().find_map(|x| match x {
        Action::Attach {
            probe, generation, ..
        } if probe == "sys_enter_close" => Some(*generation),
        _ => None,
    });
    assert!(new_generation.is_some_and(|g| g != names[1].1), "{again:?}");
    // F8 detaches everything still attached (the new generation is attaching).
    let all = a.update(key(KeyCode::F(8)));
    assert!(
        all.iter()
            .all(|x| matches!(x, Action::Detach { probe, .. } if probe == "sys_enter_close")),
        "{all:?}"
    );
    assert_eq!(all.len(), 1, "{all:?}");
}

#[test]
fn mouse_focuses_panes_and_the_layout_follows_resizes() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    use nubpf_tui::app::workbench::state::Focus;
    if !nubpf_tui_test_tracefs() {
        return;
    }
    let mut a = app(TWO_PROBES);
    compile(&mut a);
    attach(&mut a);
    let click = |a: &mut App, x: u16, y: u16| {
        a.update(Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        }));
    };
    for (w, h) in [(120, 32), (80, 24), (160, 48)] {
        screen(&mut a, w, h);
        a.update(Event::Resize(w, h));
        let r = a.regions;
        let centre = |r: ratatui::layout::Rect| (r.x + r.width / 2, r.y + r.height / 2);
        let (x, y) = centre(r.output);
        click(&mut a, x, y);
        assert_eq!(a.focus, Focus::Output, "{w}x{h}: {r:?}");
        let (x, y) = centre(r.probes);
        click(&mut a, x, y);
        assert_eq!(a.focus, Focus::Probes, "{w}x{h}: {r:?}");
        let (x, y) = centre(r.editor);
        click(&mut a, x, y);
        assert_eq!(a.focus, Focus::Editor, "{w}x{h}: {r:?}");
        // Every pane fits the screen.
        for pane in [r.editor, r.probes, r.output] {
            assert!(
                pane.right() <= w && pane.bottom() <= h && pane.area() > 0,
                "{w}x{h}: {r:?}"
            );
        }
    }
}

#[test]
fn the_wheel_scrolls_the_output_and_the_panel_names_the_mechanism() {
    use crossterm::event::{MouseEvent, MouseEventKind};
    if !nubpf_tui_test_tracefs() {
        return;
    }
    let mut a = app(OPENAT);
    compile(&mut a);
    let (probe, generation) = press_f5(&mut a);
    // The driver reports that the kprobe went through fentry.
    a.update(Event::Attached {
        probe: probe.clone(),
        generation,
        result: Ok(Duration::from_micros(900)),
        insns: 40,
        mechanism: Some("fentry".into()),
    });
    let shown = text(&screen(&mut a, 120, 32));
    assert!(shown.contains("kprobe→fentry"), "{shown}");

    for i in 0..60u64 {
        a.update(Event::Records {
            probe: probe.clone(),
            generation,
            columns: vec!["pid".into(), "comm".into(), "file".into()],
            records: vec![vec![
                Value::UInt(i),
                Value::Str("w".into()),
                Value::Str(format!("/f{i}")),
            ]],
        });
    }
    let following = text(&screen(&mut a, 120, 32));
    assert!(
        following.contains("/f59") && following.contains("following"),
        "{following}"
    );
    let wheel = |a: &mut App, kind: MouseEventKind| {
        let r = a.regions.output;
        a.update(Event::Mouse(MouseEvent {
            kind,
            column: r.x + r.width / 2,
            row: r.y + r.height / 2,
            modifiers: KeyModifiers::NONE,
        }));
    };
    // Three rows a notch: two notches up leave the last six rows below the view.
    wheel(&mut a, MouseEventKind::ScrollUp);
    wheel(&mut a, MouseEventKind::ScrollUp);
    let scrolled = text(&screen(&mut a, 120, 32));
    assert!(
        scrolled.contains("/f53") && !scrolled.contains("/f54") && scrolled.contains("scrolled"),
        "{scrolled}"
    );
    wheel(&mut a, MouseEventKind::ScrollDown);
    wheel(&mut a, MouseEventKind::ScrollDown);
    let back = text(&screen(&mut a, 120, 32));
    assert!(back.contains("/f59"), "{back}");
    // The wheel over the editor does not move the output.
    let r = a.regions.editor;
    a.update(Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: r.x + r.width / 2,
        row: r.y + r.height / 2,
        modifiers: KeyModifiers::NONE,
    }));
    assert!(text(&screen(&mut a, 120, 32)).contains("/f59"));
}

#[test]
fn ctrl_s_saves_the_script_privately_and_keeps_the_file_name() {
    let dir = std::env::temp_dir().join(format!("nubpf-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let file = dir.join("probes.nu");
    let mut editor = Editor::new(Keymap::Emacs, None);
    editor.set_text("bpf_interval 1sec {|ctx| count }");
    let mut a = App::new(
        editor,
        Some(file.clone()),
        Status {
            privileges: None,
            kernel: "6.18-test".into(),
        },
    );
    let ctrl_s = Event::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let saves: Vec<_> = a
        .update(ctrl_s)
        .into_iter()
        .filter_map(|a| match a {
            Action::Save(path, text) => Some((path, text)),
            _ => None,
        })
        .collect();
    assert_eq!(
        saves,
        vec![(file.clone(), "bpf_interval 1sec {|ctx| count }".to_string())]
    );
    // What the driver does with it: written whole, 0600.
    let (path, text) = &saves[0];
    nubpf_tui::app::session::files::replace_private(path, text.as_bytes()).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), *text);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        text.len() > 10 && format!("{:?}", screen(&mut a, 100, 30).backend()).contains("saved")
    );
}
