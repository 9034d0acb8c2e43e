//! `nubpf-tui run`, `list` and `check` as a user runs them: the real binary, real probes, real
//! workloads, compared with ground truth. Privileged tests skip without root and fail
//! instead under `NUBPF_REQUIRE_PRIVILEGED=1`.

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{our_links, our_programs, privileged, started_pid, testee, unique_prefix};

/// Tests that compare the kernel's program list must not overlap with other runs; every
/// test here takes this lock so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn nubpf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
}

/// Runs `nubpf-tui` with `args`, killing it after `timeout`. Its output is read while it
/// runs, so a chatty run never blocks on a full pipe.
fn run(args: &[&str], timeout: Duration) -> Output {
    let mut child = nubpf()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nubpf-tui");
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nubpf-tui {args:?} did not finish in {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap()),
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The pid `run -c` reports for the command it started.
fn json_objects(out: &Output) -> Vec<serde_json_lite::Object> {
    stdout_lines(out)
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json_lite::parse(l))
        .collect()
}

/// A minimal flat-JSON reader for our NDJSON (objects of strings and integers).
mod serde_json_lite {
    use std::collections::BTreeMap;

    pub type Object = BTreeMap<String, String>;

    pub fn parse(line: &str) -> Object {
        let mut out = Object::new();
        let body = line.trim().trim_start_matches('{').trim_end_matches('}');
        let mut chars = body.chars().peekable();
        let read_string = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut s = String::new();
            assert_eq!(chars.next(), Some('"'));
            while let Some(c) = chars.next() {
                match c {
                    '\\' => s.push(chars.next().unwrap()),
                    '"' => break,
                    c => s.push(c),
                }
            }
            s
        };
        while chars.peek().is_some() {
            let key = read_string(&mut chars);
            assert_eq!(chars.next(), Some(':'));
            let value = if chars.peek() == Some(&'"') {
                read_string(&mut chars)
            } else {
                let mut v = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v
            };
            out.insert(key, value);
            if chars.peek() == Some(&',') {
                chars.next();
            }
        }
        out
    }
}

#[test]
fn count_per_pid_of_a_command_is_exact() {
    if !privileged("count_per_pid_of_a_command_is_exact") {
        return;
    }
    let _serial = serial();
    let testee = testee();
    let cmd = format!(
        "{} open {} 1000",
        testee.display(),
        unique_prefix("runcount")
    );
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count --by $e.pid }"#,
            "-c",
            &cmd,
            "--format",
            "json",
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = started_pid(&out).to_string();
    let rows = json_objects(&out);
    let row = rows
        .iter()
        .find(|r| r.get("pid") == Some(&pid))
        .unwrap_or_else(|| panic!("no row for pid {pid}: {rows:?}"));
    assert_eq!(row["count"], "1000");
    assert_eq!(row["aggregation"], "count");
}

#[test]
fn emit_and_where_show_exactly_the_test_files() {
    if !privileged("emit_and_where_show_exactly_the_test_files") {
        return;
    }
    let _serial = serial();
    let prefix = unique_prefix("runemit");
    let cmd = format!("{} open {prefix} 7", testee().display());
    let script = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| emit {{pid: $e.pid, file: $e.filename}} }} | where file =~ "{}""#,
        prefix.trim_start_matches("/tmp/")
    );
    let out = run(
        &["run", "-e", &script, "-c", &cmd, "--format", "json"],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = started_pid(&out).to_string();
    let files: Vec<(String, String)> = json_objects(&out)
        .into_iter()
        .map(|r| (r["pid"].clone(), r["file"].clone()))
        .collect();
    let expect: Vec<(String, String)> = (0..7)
        .map(|i| (pid.clone(), format!("{prefix}{i}")))
        .collect();
    assert_eq!(files, expect);
}

/// Opens nonexistent files in a loop until dropped.
struct Workload(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Workload {
    fn start(tag: &str) -> Workload {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let prefix = unique_prefix(tag);
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::File::open(format!("{prefix}{i}"));
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Workload(stop, Some(handle))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn first_three_stops_after_three_records_and_detaches() {
    if !privileged("first_three_stops_after_three_records_and_detaches") {
        return;
    }
    let _serial = serial();
    let before = our_programs();
    let _load = Workload::start("first3");
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {pid: $e.pid, file: $e.filename} } | first 3"#,
            "--format",
            "json",
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_objects(&out).len(),
        3,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(our_programs(), before, "programs left attached");
}

#[test]
fn seed_pipeline_counts_per_pid() {
    if !privileged("seed_pipeline_counts_per_pid") {
        return;
    }
    let _serial = serial();
    let cmd = format!(
        "{} open {} 40",
        testee().display(),
        unique_prefix("seedpipe")
    );
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid --to-table | each {|g| {pid: $g.pid, count: ($g.items | length)}}"#,
            "-c",
            &cmd,
            "--format",
            "json",
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = started_pid(&out).to_string();
    let rows = json_objects(&out);
    let row = rows
        .iter()
        .find(|r| r.get("pid") == Some(&pid))
        .unwrap_or_else(|| panic!("no group for {pid}: {rows:?}"));
    assert_eq!(row["count"], "40");
}

#[test]
fn seed_verbatim_group_by_shows_nushells_error_with_a_hint() {
    if !privileged("seed_verbatim_group_by_shows_nushells_error_with_a_hint") {
        return;
    }
    let _serial = serial();
    let cmd = format!(
        "{} open {} 3",
        testee().display(),
        unique_prefix("seedverb")
    );
    let script = r#"bpf_tracepoint "syscalls:sys_enter_openat" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid | each {|group| {pid: $group.name, count: ($group.items | length)}}"#;
    let out = run(&["run", "-e", script, "-c", &cmd], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Cannot find column 'name'"), "{stderr}");
    assert!(stderr.contains("`group-by` returns a record"), "{stderr}");
    // The label sits under `name` of `$group.name`.
    let col = script.find("$group.name").unwrap() + "$group.".len() + 1;
    assert!(stderr.contains(&format!("<expr>:1:{col}]")), "{stderr}");
}

#[test]
fn uprobe_and_uretprobe_see_arguments_and_results() {
    if !privileged("uprobe_and_uretprobe_see_arguments_and_results") {
        return;
    }
    let _serial = serial();
    let bin = testee().display().to_string();
    let script = format!(
        "bpf_uprobe \"{bin}\" \"nubpf_testee_add\" {{|ctx| emit {{a: $ctx.arg0, b: $ctx.arg1}} }}\n\
         bpf_uretprobe \"{bin}\" \"nubpf_testee_add\" {{|ctx| emit {{ret: $ctx.retval}} }}"
    );
    let cmd = format!("{bin} add 5 10 4");
    let out = run(
        &["run", "-e", &script, "-c", &cmd, "--format", "json"],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_objects(&out);
    let args: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.contains_key("a"))
        .map(|r| (r["a"].clone(), r["b"].clone()))
        .collect();
    let rets: Vec<String> = rows.iter().filter_map(|r| r.get("ret").cloned()).collect();
    assert_eq!(
        args,
        (0..4)
            .map(|i| ("5".to_string(), (10 + i).to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rets,
        (0..4).map(|i| (15 + i).to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn kprobe_on_this_kernel_says_so_and_suggests_a_tracepoint_that_works() {
    if !privileged("kprobe_on_this_kernel_says_so_and_suggests_a_tracepoint_that_works") {
        return;
    }
    let _serial = serial();
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        eprintln!("this kernel has kprobes; the no-kprobes message cannot be shown here");
        return;
    }
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_kprobe "do_sys_open" {|ctx| count }"#,
            "--duration",
            "1sec",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no kprobes"), "{stderr}");
    let suggestion = stderr
        .split("the tracepoint `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap_or_else(|| panic!("no suggestion in {stderr}"));
    assert_eq!(suggestion, "syscalls:sys_enter_openat");
    let check = run(
        &[
            "check",
            "-e",
            &format!("bpf_tracepoint \"{suggestion}\" {{|ctx| count }}"),
        ],
        Duration::from_secs(30),
    );
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

fn signal_leaves_nothing_attached(signal: i32) {
    let before = our_programs();
    let mut child = nubpf()
        .args([
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count --by $e.comm }
bpf_tracepoint "syscalls:sys_enter_close" {|e| emit $e.pid }"#,
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stdout all along: every close on the machine is a record, and a full pipe would
    // block the run.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    // Wait until attached.
    let mut stderr = child.stderr.take().unwrap();
    let started = Instant::now();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("attached") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "nubpf-tui exited early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        assert!(started.elapsed() < Duration::from_secs(30), "{seen}");
    }
    assert_ne!(our_programs(), before, "nothing attached while running");
    let links = our_links();
    assert!(!links.is_empty(), "no links while running");
    let left = |links: &std::collections::BTreeSet<u32>| -> Vec<u32> {
        aya::programs::loaded_links()
            .flatten()
            .map(|l| l.id())
            .filter(|id| links.contains(id))
            .collect()
    };
    // Something to count, so the final aggregation has a row.
    for _ in 0..3 {
        drop(std::fs::File::open("/dev/null").unwrap());
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    if signal != libc::SIGKILL {
        assert!(status.success(), "exit after signal {signal}: {status:?}");
        // The final aggregates are printed after the signal.
        assert!(
            stdout.lines().any(|l| l.contains("\"count\":")),
            "no final count after signal {signal}:\n{stdout}"
        );
    }
    // The kernel releases programs when their last file descriptor closes; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (our_programs() != before || !left(&links).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        our_programs(),
        before,
        "programs left after signal {signal}"
    );
    assert_eq!(
        left(&links),
        Vec::<u32>::new(),
        "links left after signal {signal}"
    );
}

#[test]
fn nothing_stays_attached_after_sigint_sigterm_or_sigkill() {
    if !privileged("nothing_stays_attached_after_sigint_sigterm_or_sigkill") {
        return;
    }
    let _serial = serial();
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        signal_leaves_nothing_attached(signal);
    }
}

#[test]
fn list_finds_tracepoints_functions_and_symbols() {
    if !privileged("list_finds_tracepoints_functions_and_symbols") {
        return;
    }
    let _serial = serial();
    let out = run(
        &["list", "tracepoints", "sys_enter_openat", "--args"],
        Duration::from_secs(30),
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("syscalls:sys_enter_openat(")
                && l.contains("filename: const char *")),
        "{text}"
    );
    let out = run(
        &[
            "list",
            "kfuncs",
            "do_sys_open",
            "--args",
            "--format",
            "json",
        ],
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#"{"name":"do_sys_open","args":[{"name":"dfd","type":"int"}"#),
        "{text}"
    );
    let out = run(
        &["list", "uprobes", "/bin/bash", "read*"],
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.lines().any(|l| l == "readline"), "{text}");

    // Without a kind: tracepoints and kernel functions together, each with its kind.
    let out = run(&["list", "*sys_open*", "--args"], Duration::from_secs(30));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("kfunc:do_sys_open(dfd: int, filename: const char *")),
        "{text}"
    );
    let out = run(&["list", "sys_enter_openat"], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == "tracepoint:syscalls:sys_enter_openat"),
        "{text}"
    );
    // A binary that does not exist is an error, not an empty list.
    let out = run(
        &["list", "uprobes", "/nonexistent/binary"],
        Duration::from_secs(30),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn count_option_stops_after_n_records() {
    if !privileged("count_option_stops_after_n_records") {
        return;
    }
    let _serial = serial();
    let _load = Workload::start("countopt");
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit $e.filename }"#,
            "--count",
            "5",
            "--format",
            "json",
        ],
        Duration::from_secs(30),
    );
    assert!(out.status.success());
    assert_eq!(json_objects(&out).len(), 5);
}

#[test]
fn without_privileges_run_names_the_missing_capabilities() {
    if !privileged("without_privileges_run_names_the_missing_capabilities") {
        return;
    }
    // Drop to `nobody` with no capabilities for this one command.
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_nubpf-tui"))
        .args([
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count }"#,
        ])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lacks CAP_BPF and CAP_PERFMON"), "{stderr}");
    assert!(stderr.contains("setcap"), "{stderr}");
}

#[test]
fn nuon_output_prints_aggregations_as_records() {
    if !privileged("nuon_output_prints_aggregations_as_records") {
        return;
    }
    let _serial = serial();
    let cmd = format!("{} open {} 3", testee().display(), unique_prefix("nuon"));
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.comm == "testee" { count --by $e.comm } }"#,
            "-c",
            &cmd,
            "--format",
            "nuon",
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout_lines(&out),
        vec![r#"{aggregation: count, comm: testee, count: 3}"#.to_string()]
    );
}

#[test]
fn fentry_on_a_kernel_that_refuses_it_says_so_and_suggests_what_works() {
    if !privileged("fentry_on_a_kernel_that_refuses_it_says_so_and_suggests_what_works") {
        return;
    }
    let _serial = serial();
    let mut runtime = nubpf_tui::probes::runtime::Runtime::new();
    if nubpf_tui::probes::runtime::features::Probed::probe(&mut runtime).fentry {
        eprintln!("this kernel allows fentry; the refusal cannot be shown here");
        return;
    }
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_fexit "vfs_read" {|ctx| hist $ctx.retval }"#,
            "--duration",
            "1sec",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refuses fentry/fexit programs"), "{stderr}");
    assert!(
        stderr.contains("syscalls:sys_enter_read") || stderr.contains("bpf_kprobe"),
        "{stderr}"
    );
    assert!(!stderr.contains("bug"), "{stderr}");
}

#[test]
fn check_emit_elf_writes_the_object_that_would_be_loaded() {
    // A uprobe needs no tracefs or root: only the test binary's symbols.
    let bin = testee().display().to_string();
    let script =
        format!("bpf_uprobe \"{bin}\" \"nubpf_testee_add\" {{|ctx| count --by $ctx.arg0 }}");
    let path = std::path::PathBuf::from(format!("{}probe.o", unique_prefix("emit-elf")));
    let out = run(
        &["check", "-e", &script, "--emit-elf", path.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let written = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = written.expect("the object file");
    let catalogue = nubpf_tui::probes::catalogue::Catalogue::system();
    let (compiled, diagnostics) = nubpf_tui::probes::front::compile(&script, &catalogue);
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    assert_eq!(written, compiled.compiled.object);
    // A relocatable ELF64 for the BPF machine (247).
    assert_eq!(&written[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([written[18], written[19]]), 247);

    let bad = run(
        &["check", "-e", &script, "--emit-elf", "/nonexistent/dir/x.o"],
        Duration::from_secs(30),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("cannot write /nonexistent/dir/x.o"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn lost_events_are_counted_reported_and_add_up_to_the_ground_truth() {
    if !privileged("lost_events_are_counted_reported_and_add_up_to_the_ground_truth") {
        return;
    }
    let _serial = serial();
    // A one-page ring buffer cannot hold a getpid flood between two drains: events are
    // lost, and every one of them must be accounted for.
    let calls = 300_000u64;
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| if $e.comm == "testee" { emit {pid: $e.pid} } }"#,
            "--format",
            "json",
            "--buffer-size",
            "4KiB",
            "-c",
            &format!("{} getpid {calls}", testee().display()),
        ],
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let delivered = json_objects(&out).len() as u64;
    let summary = stderr
        .lines()
        .find(|l| l.contains("sys_enter_getpid (") && l.ends_with(" lost"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (records, lost) = (numbers[numbers.len() - 2], numbers[numbers.len() - 1]);
    assert_eq!(records, delivered, "{summary}");
    assert!(
        lost > 0,
        "a 4 KiB buffer lost nothing of {calls} events: {summary}"
    );
    assert_eq!(delivered + lost, calls, "{summary}");
    let reported: u64 = stderr
        .lines()
        .filter(|l| l.contains("events (ring buffer full;"))
        .filter_map(|l| {
            l.split(" lost ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(reported, lost, "losses reported on stderr:\n{stderr}");
}

#[test]
fn buffer_size_must_be_a_power_of_two_of_at_least_a_page() {
    for bad in ["3000", "5KiB", "1", "2GiB", "lots"] {
        let out = nubpf()
            .args(["run", "-e", "x", "--buffer-size", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--buffer-size {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--buffer-size"), "{stderr}");
    }
}

#[test]
fn check_reads_files_dumps_ir_and_asm_and_exits_1_on_diagnostics() {
    if !privileged("check_reads_files_dumps_ir_and_asm_and_exits_1_on_diagnostics") {
        return;
    }
    struct File(String);
    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let good = File(format!("{}good.nu", unique_prefix("check")));
    std::fs::write(
        &good.0,
        "bpf_tracepoint \"syscalls:sys_enter_openat\" {|e| count --by $e.pid }\n",
    )
    .unwrap();
    let ir = run(&["check", &good.0, "--dump", "ir"], Duration::from_secs(30));
    assert_eq!(ir.status.code(), Some(0), "{ir:?}");
    let text = String::from_utf8_lossy(&ir.stdout);
    assert!(
        text.contains("count by [pid: u32]")
            && text.contains("probe \"sys_enter_openat\" on tracepoint:syscalls:sys_enter_openat"),
        "{text}"
    );
    let asm = run(
        &["check", &good.0, "--dump", "asm"],
        Duration::from_secs(30),
    );
    assert_eq!(asm.status.code(), Some(0));
    let text = String::from_utf8_lossy(&asm.stdout);
    assert!(
        text.contains("call bpf_get_current_pid_tgid#14") && text.contains("(95) exit"),
        "{text}"
    );

    let bad = File(format!("{}bad.nu", unique_prefix("check")));
    std::fs::write(
        &bad.0,
        "bpf_tracepoint \"syscalls:sys_enter_openat\" {|e| count --by $e.pidd }\n",
    )
    .unwrap();
    let out = run(&["check", &bad.0], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nubpf::unknown_field") && stderr.contains("did you mean `pid`?"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}:1:63", bad.0)), "{stderr}");

    let missing = run(
        &["check", "/nonexistent/probes.nu"],
        Duration::from_secs(30),
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/probes.nu")
    );
}

#[test]
fn pid_restricts_to_one_process_and_interval_prints_while_running() {
    if !privileged("pid_restricts_to_one_process_and_interval_prints_while_running") {
        return;
    }
    let _serial = serial();
    // Two processes open files with the same prefix; only the one given to --pid counts.
    // The traced one waits before it starts (exec keeps the shell's pid).
    let prefix = unique_prefix("onepid");
    let traced = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 1.5; exec {} open {prefix} 40",
            testee().display()
        ))
        .spawn()
        .unwrap();
    let pid = traced.id();
    let other = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 1.5; exec {} open {prefix} 25",
            testee().display()
        ))
        .spawn()
        .unwrap();
    let script = format!(
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {{|e| if $e.filename starts-with "{prefix}" {{ count --by $e.pid }} }}"#
    );
    let started = Instant::now();
    let out = run(
        &[
            "run",
            "-e",
            &script,
            "--pid",
            &pid.to_string(),
            "--duration",
            "3sec",
            "--interval",
            "500ms",
        ],
        Duration::from_secs(60),
    );
    for mut child in [traced, other] {
        let _ = child.wait();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "--duration 3sec stopped early"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Tables: printed every 500 ms while running, and once at the end.
    let printed = stdout.lines().filter(|l| l.starts_with("@count:")).count();
    assert!(
        printed >= 4,
        "--interval printed {printed} times:\n{stdout}"
    );
    // The last table has the traced pid with exactly its 40 opens, and no other pid.
    let last = stdout.rsplit("@count:").next().unwrap();
    assert!(
        last.lines()
            .any(|l| l.contains(&pid.to_string()) && l.contains(" 40 ")),
        "{last}"
    );
    let rows = last
        .lines()
        .filter(|l| l.chars().filter(|c| c.is_ascii_digit()).count() > 0 && l.contains('│'))
        .count();
    assert_eq!(rows, 1, "only the traced pid: {last}");
}

#[test]
fn a_panic_after_attaching_leaves_nothing_attached() {
    if !privileged("a_panic_after_attaching_leaves_nothing_attached") {
        return;
    }
    let _serial = serial();
    let before = our_programs();
    let mut child = nubpf()
        .args([
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_enter_close" {|e| emit $e.pid }"#,
        ])
        .env("NUBPF_TEST_PANIC", "attached")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Watch the kernel's lists while it runs: its programs and links must appear, then go.
    let mut seen_programs = std::collections::BTreeSet::new();
    let mut seen_links = std::collections::BTreeSet::new();
    let status = loop {
        seen_programs.extend(our_programs().difference(&before).copied());
        seen_links.extend(our_links());
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(101), "a panic: {stderr}");
    assert!(stderr.contains("a deliberate panic"), "{stderr}");
    assert!(stderr.contains("attached 1 probe"), "{stderr}");
    assert!(
        !seen_programs.is_empty(),
        "its program was never seen loaded"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = || {
        let programs: Vec<u32> = our_programs()
            .intersection(&seen_programs)
            .copied()
            .collect();
        let links: Vec<u32> = aya::programs::loaded_links()
            .flatten()
            .map(|l| l.id())
            .filter(|id| seen_links.contains(id))
            .collect();
        (programs, links)
    };
    while left() != (vec![], vec![]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        left(),
        (vec![], vec![]),
        "programs and links left after a panic"
    );
}

#[test]
fn histograms_print_as_bars_with_counts_like_bpftrace() {
    if !privileged("histograms_print_as_bars_with_counts_like_bpftrace") {
        return;
    }
    let _serial = serial();
    // 9 reads of 100 bytes and 4 of 3000: two log2 buckets and two linear ones.
    let cmd = format!(
        "sh -c '{t} read /dev/zero 9 100 && {t} read /dev/zero 4 3000'",
        t = testee().display()
    );
    let out = run(
        &[
            "run",
            "-e",
            r#"bpf_tracepoint "syscalls:sys_exit_read" {|e| if $e.comm == "testee" { hist $e.ret; lhist $e.ret 0 4000 1000 } }"#,
            "-c",
            &cmd,
        ],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bar = |label: &str| -> (u64, usize) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} bucket:\n{stdout}"));
        let mut parts = line[label.len()..].split('|');
        let count = parts.next().unwrap().trim().parse().unwrap();
        (count, parts.next().unwrap().matches('@').count())
    };
    // The fullest bucket gets the whole bar; the others scale with their counts.
    let (n, full) = bar("[64, 128)");
    assert_eq!(n, 9, "{stdout}");
    let (n, part) = bar("[2K, 4K)");
    assert_eq!(n, 4, "{stdout}");
    assert!(full > 0 && part == full * 4 / 9, "{full} {part}\n{stdout}");
    // The empty buckets between them are printed, as bpftrace does.
    assert_eq!(bar("[128, 256)").0, 0, "{stdout}");
    assert_eq!(bar("[0, 1000)").0, 9, "{stdout}");
    assert_eq!(bar("[2000, 3000)").0, 0, "{stdout}");
    assert_eq!(bar("[3000, 4000)").0, 4, "{stdout}");
}
