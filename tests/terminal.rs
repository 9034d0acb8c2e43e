//! The workbench in a real terminal (tmux), as root: start the binary, type a tracepoint
//! probe, attach it, cause events, read rows and counts from the screen, quit, and check
//! the terminal was restored and nothing stays attached.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{our_programs, privileged, unique_prefix};

/// The tests here compare the kernel's program list: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (install it: apt-get install tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen satisfies `ok`, or fails showing it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the probes panel shows a probe whose name starts with `probe` attached.
    fn wait_attached(&self, probe: &str) {
        self.wait_for("the probe to attach", |s| {
            s.lines()
                .any(|l| l.contains(probe) && l.contains(" attached "))
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A scratch directory, removed with everything in it when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> ScratchDir {
        let dir = std::path::PathBuf::from(format!("{}dir", unique_prefix(tag)));
        std::fs::create_dir(&dir).unwrap();
        ScratchDir(dir)
    }

    /// The recording (`*.db`) the workbench wrote here.
    fn recording(&self) -> std::path::PathBuf {
        std::fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "db"))
            .expect("a recording in the working directory")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The workbench started in a 120x36 tmux session whose working directory is `dir`.
fn workbench_in(tag: &str, dir: &std::path::Path, args: &[&str]) -> Tmux {
    let tmux = Tmux {
        socket: format!("nubpf-{tag}-{}", std::process::id()),
    };
    let mut cmd = vec![
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        "-c",
        dir.to_str().unwrap(),
        env!("CARGO_BIN_EXE_nubpf-tui"),
    ];
    cmd.extend_from_slice(args);
    tmux.cmd(&cmd);
    tmux
}

#[test]
fn type_attach_see_rows_quit_restored() {
    if !privileged("type_attach_see_rows_quit_restored") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = our_programs();
    let tmux = Tmux {
        socket: format!("nubpf-test-{}", std::process::id()),
    };
    let script = format!("{}script.nu", unique_prefix("tmux"));
    let bin = env!("CARGO_BIN_EXE_nubpf-tui");
    // The shell records the exit status in a file: tmux 3.3 does not always report it.
    let status_file = format!("{}status", unique_prefix("tmuxstatus"));
    let command = format!("{bin} {script}; echo $? > {status_file}");
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        &command,
    ]);
    tmux.cmd(&["set-option", "-t", "t", "remain-on-exit", "on"]);
    tmux.wait_for("the workbench", |s| {
        s.contains("probes") && s.contains("F5")
    });

    let prefix = unique_prefix("tmuxrows");
    let probe = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{pid: $e.pid, file: $e.filename}} }} }}"#
    );
    tmux.cmd(&["send-keys", "-t", "t", "-l", &probe]);
    tmux.wait_for("a clean compile", |s| s.contains("the script compiles"));
    tmux.cmd(&["send-keys", "-t", "t", "F5"]);
    tmux.wait_attached("sys_enter_o");
    // The programs this workbench loaded (other tests' processes may still be exiting).
    let ours: std::collections::BTreeSet<u32> =
        our_programs().difference(&before).copied().collect();
    assert!(!ours.is_empty(), "nothing loaded after F5");

    for i in 0..5 {
        let _ = std::fs::File::open(format!("{prefix}{i}"));
    }
    let screen = tmux.wait_for("five rows", |s| s.contains("5 rows shown of 5 received"));
    for i in 0..5 {
        assert!(
            screen.contains(&format!("{prefix}{i}")),
            "row {i} missing:\n{screen}"
        );
    }
    let pid = std::process::id().to_string();
    assert!(screen.contains(&pid), "our pid {pid} missing:\n{screen}");

    tmux.cmd(&["send-keys", "-t", "t", "C-q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && s.ends_with('\n')
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the workbench did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = std::fs::remove_file(&status_file);
    assert_eq!(status.trim(), "0", "exit status");
    let alternate = tmux.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(alternate.trim(), "0", "the alternate screen was left");
    // The kernel frees a program shortly after its last descriptor closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = || -> Vec<u32> { our_programs().intersection(&ours).copied().collect() };
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(left(), Vec::<u32>::new(), "programs left after quitting");
    assert!(
        !std::path::Path::new(&script).exists(),
        "quitting must not write the script"
    );
}

#[test]
fn seed_readline_probe_emits_the_lines_typed_at_an_interactive_bash() {
    if !privileged("seed_readline_probe_emits_the_lines_typed_at_an_interactive_bash") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let run = Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
        .args([
            "run",
            "-e",
            r#"bpf_uprobe "/bin/bash" "readline" {|ctx| emit($ctx.line) }"#,
            "--format",
            "json",
            "--duration",
            "6sec",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Give the uprobe time to attach before typing.
    std::thread::sleep(Duration::from_millis(1500));
    let tmux = Tmux {
        socket: format!("nubpf-bash-{}", std::process::id()),
    };
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "20",
        "bash --norc --noprofile -i",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let marker = format!("echo nubpf-typed-{}", std::process::id());
    tmux.cmd(&["send-keys", "-t", "t", "-l", &marker]);
    tmux.cmd(&["send-keys", "-t", "t", "Enter"]);
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("{{\"line\":\"{marker}\"}}")),
        "typed line missing: {stdout}"
    );
}

#[test]
fn the_workbench_records_and_the_recording_replays() {
    if !privileged("the_workbench_records_and_the_recording_replays") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = ScratchDir::new("tuirec");
    let tmux = workbench_in("rec", &dir.0, &[]);
    let bin = env!("CARGO_BIN_EXE_nubpf-tui");
    tmux.wait_for("the workbench", |s| {
        s.contains("probes") && s.contains("F5")
    });
    let prefix = unique_prefix("tuirecrows");
    let probe = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{file: $e.filename}} }} }}"#
    );
    tmux.cmd(&["send-keys", "-t", "t", "-l", &probe]);
    tmux.cmd(&["send-keys", "-t", "t", "F5"]);
    tmux.wait_attached("sys_enter_o");
    tmux.cmd(&["send-keys", "-t", "t", "F9"]);
    tmux.wait_for("recording", |s| s.contains("● REC"));
    for i in 0..4 {
        let _ = std::fs::File::open(format!("{prefix}{i}"));
    }
    tmux.wait_for("four rows", |s| s.contains("4 rows shown of 4 received"));
    // The UI copies rows to the recording as it shows them; give the writer a moment.
    std::thread::sleep(Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "F9"]);
    tmux.wait_for("the recording to finish", |s| {
        s.contains("recorded 4 records")
    });
    tmux.cmd(&["send-keys", "-t", "t", "C-q"]);
    let db = dir.recording();
    let out = Command::new(bin)
        .arg("replay")
        .arg(&db)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expect: Vec<String> = (0..4)
        .map(|i| format!("{{\"file\":\"{prefix}{i}\"}}"))
        .collect();
    assert_eq!(rows, expect);
}

#[test]
fn replay_in_the_workbench_plays_pauses_and_reruns_an_edited_pipeline() {
    if !privileged("replay_in_the_workbench_plays_pauses_and_reruns_an_edited_pipeline") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bin = env!("CARGO_BIN_EXE_nubpf-tui");
    let db = format!("{}rec.db", unique_prefix("tuireplay"));
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            for s in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{s}", self.0));
            }
        }
    }
    let _remove = Remove(db.clone());
    let prefix = unique_prefix("tuireplayfiles");
    let script = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{file: $e.filename}} }} }} | where file ends-with "1""#
    );
    let out = Command::new(bin)
        .args([
            "run",
            "-e",
            &script,
            "-c",
            &format!("{} open {prefix} 12", common::testee().display()),
            "--format",
            "json",
            "--record",
            &db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tmux = Tmux {
        socket: format!("nubpf-replay-{}", std::process::id()),
    };
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        &format!("{bin} replay {db}"),
    ]);
    tmux.wait_for("the replayed rows", |s| {
        s.contains("12 rows shown of 12 received")
    });
    tmux.cmd(&["send-keys", "-t", "t", "Right"]);
    let screen = tmux.wait_for("the pipeline tab", |s| {
        s.contains(r#"| where file ends-with "1""#)
    });
    let rows = |s: &str| s.lines().filter(|l| l.contains(&prefix)).count();
    tmux.wait_for("the pipeline's result", |s| rows(s) == 2);
    let _ = screen;
    // Edit the pipeline: `"1"` becomes `"2"`; the result is re-computed from the recording.
    tmux.cmd(&["send-keys", "-t", "t", "F2", "End", "BSpace", "BSpace"]);
    tmux.cmd(&["send-keys", "-t", "t", "-l", "2\""]);
    tmux.wait_for("the re-run pipeline", |s| {
        s.contains(r#"| where file ends-with "2""#)
            && s.contains(&format!("{prefix}2"))
            && rows(s) == 1
    });
    tmux.cmd(&["send-keys", "-t", "t", "F5"]);
    tmux.wait_for("a paused replay", |s| s.contains("⏸ replay"));
    tmux.cmd(&["send-keys", "-t", "t", "C-q"]);
}

#[test]
fn a_workbench_recording_keeps_every_record_of_a_flood() {
    if !privileged("a_workbench_recording_keeps_every_record_of_a_flood") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = ScratchDir::new("tuiflood");
    let script = dir.0.join("flood.nu");
    std::fs::write(
        &script,
        "bpf_tracepoint \"syscalls:sys_enter_getpid\" {|e| if $e.comm == \"testee\" { emit {pid: $e.pid} } }\n",
    )
    .unwrap();
    let tmux = workbench_in("flood", &dir.0, &[script.to_str().unwrap()]);
    tmux.wait_for("the workbench", |s| s.contains("F5"));
    tmux.cmd(&["send-keys", "-t", "t", "F6"]);
    tmux.wait_attached("sys_enter_g");
    tmux.cmd(&["send-keys", "-t", "t", "F9"]);
    tmux.wait_for("recording", |s| s.contains("● REC"));
    // Far more records than the UI keeps up with: it may drop some from its view, the
    // recording must not.
    let calls = 300_000u64;
    let status = Command::new(common::testee())
        .args(["getpid", &calls.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(1000));
    tmux.cmd(&["send-keys", "-t", "t", "F9"]);
    tmux.wait_for("the recording to finish", |s| s.contains("recorded "));
    tmux.cmd(&["send-keys", "-t", "t", "C-q"]);
    let db = dir.recording();
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows: u64 = conn
        .query_row("SELECT count(*) FROM sys_enter_getpid", [], |r| r.get(0))
        .unwrap();
    let lost: u64 = conn
        .query_row("SELECT coalesce(sum(lost), 0) FROM nubpf_lost", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(rows > 0);
    assert_eq!(rows + lost, calls, "{rows} recorded + {lost} lost");
}

#[test]
fn ctrl_c_sigterm_and_a_panic_restore_the_terminal_and_detach() {
    if !privileged("ctrl_c_sigterm_and_a_panic_restore_the_terminal_and_detach") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = ScratchDir::new("tuistop");
    let script = dir.0.join("probe.nu");
    std::fs::write(
        &script,
        "bpf_tracepoint \"syscalls:sys_enter_close\" {|e| count --by $e.comm }\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_nubpf-tui");
    for how in ["ctrl-c", "sigterm", "panic"] {
        let before = our_programs();
        let status_file = dir.0.join(format!("{how}.status"));
        let stty_file = dir.0.join(format!("{how}.stty"));
        // After the workbench: its exit status, and the terminal's modes as it left them.
        // A deliberate panic the moment the probe is attached (see `app::test_panic`).
        let env = if how == "panic" {
            "NUBPF_TEST_PANIC=attached "
        } else {
            ""
        };
        let command = format!(
            "{env}{bin} {}; echo $? > {}; stty -a > {}",
            script.display(),
            status_file.display(),
            stty_file.display()
        );
        let tmux = Tmux {
            socket: format!("nubpf-stop-{how}-{}", std::process::id()),
        };
        tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            &command,
        ]);
        tmux.cmd(&["set-option", "-t", "t", "remain-on-exit", "on"]);
        tmux.wait_for("the workbench", |s| s.contains("F5"));
        tmux.cmd(&["send-keys", "-t", "t", "F6"]);
        let mut ours = std::collections::BTreeSet::new();
        if how == "panic" {
            // Gone the moment it attaches: watch for its program meanwhile.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stty_file.exists() && Instant::now() < deadline {
                ours.extend(our_programs().difference(&before).copied());
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            tmux.wait_attached("sys_enter_c");
            ours = our_programs().difference(&before).copied().collect();
        }
        assert!(!ours.is_empty(), "{how}: nothing loaded");
        if how == "ctrl-c" {
            tmux.cmd(&["send-keys", "-t", "t", "C-c"]);
        } else if how == "sigterm" {
            let shell = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_pid}"]);
            let out = Command::new("pkill")
                .args(["-TERM", "-P", shell.trim(), "-x", "nubpf-tui"])
                .status()
                .unwrap();
            assert!(out.success(), "{how}: no workbench process to signal");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(stty_file.exists()
            && std::fs::read_to_string(&stty_file).is_ok_and(|s| s.contains("icanon")))
        {
            assert!(
                Instant::now() < deadline,
                "{how}: the workbench did not stop:\n{}",
                tmux.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let status = std::fs::read_to_string(&status_file).unwrap();
        let expected = if how == "panic" { "101" } else { "0" };
        assert_eq!(status.trim(), expected, "{how}: exit status");
        let stty = std::fs::read_to_string(&stty_file).unwrap();
        assert!(
            !stty.contains("-icanon") && !stty.contains("-echo "),
            "{how}: raw mode left on:\n{stty}"
        );
        let alternate = tmux.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"]);
        assert_eq!(
            alternate.trim(),
            "0",
            "{how}: the alternate screen was left"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let left = || -> Vec<u32> { our_programs().intersection(&ours).copied().collect() };
        while !left().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(left(), Vec::<u32>::new(), "{how}: programs left");
    }
}

#[test]
fn a_kernel_function_probe_this_kernel_cannot_attach_says_why_and_what_works() {
    if !privileged("a_kernel_function_probe_this_kernel_cannot_attach_says_why_and_what_works") {
        return;
    }
    use nubpf_tui::probes::runtime::Runtime;
    use nubpf_tui::probes::runtime::features::{Features, Probed};
    if Features::detect().kprobes || Probed::probe(&mut Runtime::new()).fentry {
        eprintln!(
            "skipping a_kernel_function_probe_this_kernel_cannot_attach_says_why_and_what_works: \
             this kernel attaches kernel-function probes (the VM suite tests that)"
        );
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = ScratchDir::new("tuireach");
    let before = our_programs();
    let tmux = workbench_in("reach", &dir.0, &[]);
    tmux.wait_for("the workbench", |s| s.contains("F5"));
    let probe = r#"bpf_kprobe "vfs_read" {|ctx| count --by $ctx.comm }"#;
    tmux.cmd(&["send-keys", "-t", "t", "-l", probe]);
    tmux.wait_for("a clean compile", |s| s.contains("the script compiles"));
    tmux.cmd(&["send-keys", "-t", "t", "F5"]);
    // The same explanation as `run`: what is missing, on the probe's text, and the
    // tracepoint that sees the same calls.
    let screen = tmux.wait_for("the refusal", |s| {
        s.contains("has no kprobes") && s.contains("syscalls:sys_enter_read")
    });
    assert!(screen.contains("error"), "{screen}");
    tmux.cmd(&["send-keys", "-t", "t", "C-q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.cmd(&["list-sessions"]).contains("t:") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<u32> = our_programs().difference(&before).copied().collect();
    assert!(left.is_empty(), "nothing may be loaded: {left:?}");
}

#[test]
fn an_exported_session_opens_in_the_workbench_and_its_probe_attaches() {
    if !privileged("an_exported_session_opens_in_the_workbench_and_its_probe_attaches") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = ScratchDir::new("tuiexport");
    let bin = env!("CARGO_BIN_EXE_nubpf-tui");
    let prefix = unique_prefix("tuiexportrows");
    let probe = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ emit {{file: $e.filename}} }} }}"#
    );
    // A headless recording, exported as a script.
    let db = dir.0.join("rec.db");
    let out = Command::new(bin)
        .args(["run", "-e", &probe, "--record"])
        .arg(&db)
        .args([
            "-c",
            &format!("{} open {prefix} 2", common::testee().display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = dir.0.join("session.nu");
    let out = Command::new(bin)
        .arg("export")
        .arg(&db)
        .arg("-o")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `nubpf-tui session.nu` opens it: header and probe in the editor, compiled, attachable.
    let tmux = workbench_in("export", &dir.0, &[script.to_str().unwrap()]);
    tmux.wait_for("the exported script to compile", |s| {
        s.contains("session.nu")
            && s.contains("# nubpf session recorded")
            && s.contains("the script compiles")
    });
    tmux.cmd(&["send-keys", "-t", "t", "F6"]);
    tmux.wait_attached("sys_enter_o");
    for i in 0..3 {
        let _ = std::fs::File::open(format!("{prefix}x{i}"));
    }
    tmux.wait_for("three rows", |s| s.contains("3 rows shown of 3 received"));
    tmux.cmd(&["send-keys", "-t", "t", "C-q"]);
}
