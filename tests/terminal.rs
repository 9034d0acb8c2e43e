//! The workbench in a real terminal (tmux), as root: start the binary, type a tracepoint
//! probe, attach it, cause events, read rows and counts from the screen, quit, and check
//! the terminal was restored and nothing stays attached.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{our_programs, privileged, unique_prefix};

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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn type_attach_see_rows_quit_restored() {
    if !privileged("type_attach_see_rows_quit_restored") {
        return;
    }
    let before = our_programs();
    let tmux = Tmux {
        socket: format!("nubpf-test-{}", std::process::id()),
    };
    let script = format!("{}script.nu", unique_prefix("tmux"));
    let bin = env!("CARGO_BIN_EXE_nubpf-tui");
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "36",
        &format!("{bin} {script}"),
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
    tmux.wait_for("the probe to attach", |s| {
        s.lines()
            .any(|l| l.contains("sys_enter_o") && l.contains(" attached "))
    });
    assert_ne!(our_programs(), before, "nothing loaded after F5");

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
    loop {
        let state = tmux.cmd(&[
            "display",
            "-p",
            "-t",
            "t",
            "#{pane_dead} #{pane_dead_status} #{alternate_on}",
        ]);
        if state.starts_with('1') {
            assert_eq!(
                state.trim(),
                "1 0 0",
                "exit status 0 and the alternate screen left"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the workbench did not quit: {state}\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(our_programs(), before, "programs left after quitting");
    assert!(
        !std::path::Path::new(&script).exists(),
        "quitting must not write the script"
    );
}
