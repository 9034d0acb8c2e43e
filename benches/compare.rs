//! nubpf side by side with bpftrace on this machine, in one run: compile time, start →
//! attached, per-event overhead, program size, output throughput, and the workbench's own
//! figures. Writes `bench/results/latest.md` and `latest.svg`. Run as root: `bench/run.sh`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/tui.rs"]
mod tui;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front;

const NUBPF: &str = env!("CARGO_BIN_EXE_nubpf-tui");
const RESULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results");

// ---------------------------------------------------------------------------------------
// Statistics and the results table

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// One figure measured for both tools, pair by pair.
struct Pair {
    section: &'static str,
    name: String,
    unit: &'static str,
    better: Better,
    bpftrace: Vec<f64>,
    nubpf: Vec<f64>,
    note: String,
}

impl Pair {
    fn new(section: &'static str, name: impl Into<String>, unit: &'static str) -> Pair {
        Pair {
            section,
            name: name.into(),
            unit,
            better: Better::Lower,
            bpftrace: Vec::new(),
            nubpf: Vec::new(),
            note: String::new(),
        }
    }

    fn higher_is_better(mut self) -> Pair {
        self.better = Better::Higher;
        self
    }

    /// nubpf ÷ bpftrace: the median of the ratios of each pair, so drift between pairs cancels.
    fn ratio(&self) -> f64 {
        let ratios: Vec<f64> = self
            .bpftrace
            .iter()
            .zip(&self.nubpf)
            .filter(|(b, _)| **b != 0.0)
            .map(|(b, n)| n / b)
            .collect();
        median(&ratios)
    }

    /// How many times better nubpf does (> 1: nubpf wins).
    fn advantage(&self) -> f64 {
        match self.better {
            Better::Lower => 1.0 / self.ratio(),
            Better::Higher => self.ratio(),
        }
    }
}

/// A figure of nubpf alone.
struct Single {
    section: &'static str,
    name: String,
    value: String,
}

#[derive(Default)]
struct Results {
    pairs: Vec<Pair>,
    singles: Vec<Single>,
}

impl Results {
    fn single(&mut self, section: &'static str, name: impl Into<String>, value: String) {
        let s = Single {
            section,
            name: name.into(),
            value,
        };
        println!("  {}: {}", s.name, s.value);
        self.singles.push(s);
    }

    fn pair(&mut self, p: Pair) {
        println!(
            "  {}: bpftrace {} {unit}, nubpf {} {unit}, nubpf/bpftrace {:.3}{}",
            p.name,
            fmt_value(median(&p.bpftrace)),
            fmt_value(median(&p.nubpf)),
            p.ratio(),
            if p.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.note)
            },
            unit = p.unit,
        );
        self.pairs.push(p);
    }
}

fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

// ---------------------------------------------------------------------------------------
// Running either tool as a user would

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tool {
    Bpftrace,
    Nubpf,
}

/// The order of the two tools in pair `round`: alternating, so neither always goes first.
fn order(round: usize) -> [Tool; 2] {
    if round.is_multiple_of(2) {
        [Tool::Bpftrace, Tool::Nubpf]
    } else {
        [Tool::Nubpf, Tool::Bpftrace]
    }
}

/// What a tool printed on stdout, counted as it arrived.
#[derive(Default)]
struct Stdout {
    records: u64,
    /// bpftrace's "Lost N events" lines.
    lost: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Stdout {
    /// Records per second between the first and the last record.
    fn rate(&self) -> f64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) if l > f => self.records as f64 / (l - f).as_secs_f64(),
            _ => 0.0,
        }
    }
}

struct Finished {
    stdout: Stdout,
    stderr: String,
    status: ExitStatus,
}

impl Finished {
    /// Events the tool says it lost: bpftrace's "Lost N events", nubpf's summary lines.
    fn lost(&self) -> u64 {
        let from_summary: u64 = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("nubpf-tui: ") && l.contains(" records, "))
            .filter_map(|l| {
                l.rsplit(", ")
                    .next()?
                    .strip_suffix(" lost")?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        let from_stderr: u64 = self.stderr.lines().filter_map(bpftrace_lost).sum();
        self.stdout.lost + from_summary + from_stderr
    }
}

fn bpftrace_lost(line: &str) -> Option<u64> {
    line.trim()
        .strip_prefix("Lost ")?
        .strip_suffix(" events")?
        .parse()
        .ok()
}

/// A tool running one script; killed (so its probes detach) if dropped before `stop`.
struct Running {
    tool: Tool,
    child: Option<Child>,
    started: Instant,
    ready: mpsc::Receiver<Instant>,
    stdout: Option<JoinHandle<Stdout>>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    /// Starts `tool` on `script`. bpftrace gets a `BEGIN` that prints `ready`, which it runs
    /// once every probe is attached; nubpf says `attached` on stderr at that point.
    fn start(tool: Tool, script: &str, extra: &[&str]) -> Running {
        let mut cmd = match tool {
            Tool::Bpftrace => {
                let mut c = Command::new("bpftrace");
                c.arg("-e")
                    .arg(format!("BEGIN {{ printf(\"ready\\n\"); }}\n{script}"));
                c
            }
            Tool::Nubpf => {
                let mut c = Command::new(NUBPF);
                c.args(["run", "-e", script, "--format", "json"]);
                c
            }
        };
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (ready_tx, ready) = mpsc::channel();
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {tool:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let tx = ready_tx.clone();
        let stdout = std::thread::spawn(move || read_stdout(tool, out, tx));
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tool == Tool::Nubpf && line.starts_with("nubpf-tui: attached ") {
                    let _ = ready_tx.send(Instant::now());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        Running {
            tool,
            child: Some(child),
            started,
            ready,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits until every probe is attached; the time since the tool was started.
    fn attached(&mut self) -> Duration {
        match self.ready.recv_timeout(Duration::from_secs(60)) {
            Ok(at) => at - self.started,
            Err(_) => {
                let tool = self.tool;
                let f = self.stop();
                panic!("{tool:?} did not attach ({}):\n{}", f.status, f.stderr);
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Stops the tool as Ctrl-C would, and collects what it printed.
    fn stop(&mut self) -> Finished {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
        }
        self.wait(Duration::from_secs(60))
    }

    /// Waits for the tool to exit by itself (after `-c`), killing it after `timeout`.
    fn wait(&mut self, timeout: Duration) -> Finished {
        let mut child = self.child.take().expect("not stopped twice");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for the tool") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().expect("wait for the tool");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Finished {
            stdout: self
                .stdout
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default(),
            stderr: self
                .stderr
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default(),
            status,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Counts record lines as they arrive. bpftrace's own lines ("Attaching…", "ready", "Lost N
/// events", map dumps after Ctrl-C) are not records.
fn read_stdout(tool: Tool, out: impl Read, ready: mpsc::Sender<Instant>) -> Stdout {
    let mut reader = BufReader::with_capacity(1 << 20, out);
    let mut s = Stdout::default();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return s,
            Ok(_) => {}
        }
        let text = line.trim_ascii();
        if tool == Tool::Bpftrace {
            if text == b"ready" {
                let _ = ready.send(Instant::now());
                continue;
            }
            if let Some(n) = std::str::from_utf8(text).ok().and_then(bpftrace_lost) {
                s.lost += n;
                continue;
            }
            if text.is_empty() || text.starts_with(b"Attaching ") || text.starts_with(b"@") {
                continue;
            }
        }
        let now = Instant::now();
        s.first.get_or_insert(now);
        s.last = Some(now);
        s.records += 1;
    }
}

/// The programs a process holds (links and program descriptors), without bpftrace's `BEGIN`
/// and `END`.
fn programs_of(pid: u32) -> Vec<aya::programs::ProgramInfo> {
    let mut ids = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) {
        for entry in dir.flatten() {
            let Ok(info) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            ids.extend(info.lines().find_map(|l| {
                l.strip_prefix("prog_id:")
                    .and_then(|v| v.trim().parse::<u32>().ok())
            }));
        }
    }
    aya::programs::loaded_programs()
        .flatten()
        .filter(|p| ids.contains(&p.id()))
        .filter(|p| !matches!(p.name_as_str(), Some("BEGIN" | "END")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The workloads

struct Workload {
    name: &'static str,
    bpftrace: String,
    nubpf: String,
}

fn workloads(testee: &Path) -> Vec<Workload> {
    let t = testee.display();
    vec![
        Workload {
            name: "count openat per comm",
            bpftrace: "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }".into(),
            nubpf: r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| count --by $e.comm }"#
                .into(),
        },
        Workload {
            name: "log2 histogram of read sizes",
            bpftrace: "tracepoint:syscalls:sys_exit_read { @ = hist(args->ret); }".into(),
            nubpf: r#"bpf_tracepoint "syscalls:sys_exit_read" {|e| hist $e.ret }"#.into(),
        },
        Workload {
            name: "emit pid, comm, filename on openat",
            bpftrace: r#"tracepoint:syscalls:sys_enter_openat { printf("%d %s %s\n", pid, comm, str(args->filename)); }"#.into(),
            nubpf: r#"bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {pid: $e.pid, comm: $e.comm, file: $e.filename} }"#.into(),
        },
        Workload {
            name: "uprobe on a test binary, count per pid",
            bpftrace: format!("uprobe:{t}:nubpf_testee_add {{ @[pid] = count(); }}"),
            nubpf: format!(r#"bpf_uprobe "{t}" "nubpf_testee_add" {{|c| count --by $c.pid }}"#),
        },
        Workload {
            name: "count per pid on raw_syscalls:sys_enter",
            bpftrace: "tracepoint:raw_syscalls:sys_enter { @[pid] = count(); }".into(),
            nubpf: r#"bpf_tracepoint "raw_syscalls:sys_enter" {|e| count --by $e.pid }"#.into(),
        },
    ]
}

/// Removes the scratch directory however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wall(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("start the compiler");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

// ---------------------------------------------------------------------------------------
// 1. Compile time, 2. start → attached, 3. program size

fn compile_and_start(results: &mut Results, workloads: &[Workload], runs: usize, dir: &Path) {
    println!("compile (source → object, whole process) and start → attached:");
    let catalogue = Catalogue::system();
    for w in workloads {
        let (bt_obj, nb_obj) = (dir.join("bpftrace.o"), dir.join("nubpf.o"));
        let mut compile = Pair::new("compile", format!("compile: {}", w.name), "ms");
        compile.note = "bpftrace --emit-elf vs nubpf-tui check --emit-elf".into();
        let mut start = Pair::new("start", format!("start → attached: {}", w.name), "ms");
        for round in 0..runs {
            for tool in order(round) {
                let took = match tool {
                    Tool::Bpftrace => wall(
                        Command::new("bpftrace")
                            .arg("--emit-elf")
                            .arg(&bt_obj)
                            .args(["-e", &w.bpftrace]),
                    ),
                    Tool::Nubpf => wall(
                        Command::new(NUBPF)
                            .args(["check", "-e", &w.nubpf, "--emit-elf"])
                            .arg(&nb_obj),
                    ),
                };
                let ms = took.as_secs_f64() * 1e3;
                match tool {
                    Tool::Bpftrace => compile.bpftrace.push(ms),
                    Tool::Nubpf => compile.nubpf.push(ms),
                }
            }
        }
        let mut sizes = Pair::new("size", format!("xlated instructions: {}", w.name), "insns");
        let mut jited = [0u32; 2];
        for round in 0..runs {
            for tool in order(round) {
                let script = match tool {
                    Tool::Bpftrace => &w.bpftrace,
                    Tool::Nubpf => &w.nubpf,
                };
                let mut running = Running::start(tool, script, &[]);
                let ms = running.attached().as_secs_f64() * 1e3;
                if round == 0 {
                    let progs = programs_of(running.pid());
                    assert!(!progs.is_empty(), "{tool:?} holds no programs");
                    let insns: u32 = progs
                        .iter()
                        .map(|p| p.size_translated().unwrap_or(0) / 8)
                        .sum();
                    let bytes: u32 = progs.iter().map(|p| p.size_jitted()).sum();
                    match tool {
                        Tool::Bpftrace => {
                            sizes.bpftrace.push(insns as f64);
                            jited[0] = bytes;
                        }
                        Tool::Nubpf => {
                            sizes.nubpf.push(insns as f64);
                            jited[1] = bytes;
                        }
                    }
                }
                let finished = running.stop();
                assert!(
                    finished.status.success() || tool == Tool::Bpftrace,
                    "{tool:?} failed: {}",
                    finished.stderr
                );
                match tool {
                    Tool::Bpftrace => start.bpftrace.push(ms),
                    Tool::Nubpf => start.nubpf.push(ms),
                }
            }
        }
        sizes.note = format!("JIT code: bpftrace {} B, nubpf {} B", jited[0], jited[1]);
        // In-process, as the workbench compiles on every keystroke.
        let _ = front::compile(&w.nubpf, &catalogue);
        let times: Vec<f64> = (0..50)
            .map(|_| {
                let t = Instant::now();
                let (script, diags) = front::compile(&w.nubpf, &catalogue);
                assert!(script.is_some(), "{diags:?}");
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        results.pair(compile);
        results.single(
            "compile",
            format!("nubpf in-process compile: {}", w.name),
            format!("{:.0} µs median of 50", median(&times)),
        );
        results.pair(start);
        results.pair(sizes);
    }
}

// ---------------------------------------------------------------------------------------
// 4. Per-event overhead

fn getpid_loop(calls: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..calls {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    t.elapsed().as_nanos() as f64 / calls as f64
}

fn per_event(results: &mut Results, runs: usize) {
    println!("per-event overhead on a getpid loop:");
    let probes = [
        (
            "count per pid",
            "tracepoint:syscalls:sys_enter_getpid { @[pid] = count(); }",
            r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| count --by $e.pid }"#,
            2_000_000,
        ),
        (
            "emit pid+comm",
            r#"tracepoint:syscalls:sys_enter_getpid { printf("%d %s\n", pid, comm); }"#,
            r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| emit {pid: $e.pid, comm: $e.comm} }"#,
            500_000,
        ),
    ];
    let mut bare_all = Vec::new();
    for (name, bt, nb, calls) in probes {
        let mut overhead = Pair::new("per-event", format!("getpid + {name}"), "ns/call");
        let mut lost = [Vec::new(), Vec::new()];
        for round in 0..runs {
            for tool in order(round) {
                let bare = getpid_loop(calls);
                bare_all.push(bare);
                let mut running = Running::start(
                    tool,
                    match tool {
                        Tool::Bpftrace => bt,
                        Tool::Nubpf => nb,
                    },
                    &[],
                );
                running.attached();
                let probed = getpid_loop(calls);
                let finished = running.stop();
                match tool {
                    Tool::Bpftrace => {
                        overhead.bpftrace.push(probed - bare);
                        lost[0].push(finished.lost() as f64);
                    }
                    Tool::Nubpf => {
                        overhead.nubpf.push(probed - bare);
                        lost[1].push(finished.lost() as f64);
                    }
                }
            }
        }
        if name.starts_with("emit") {
            overhead.note = format!(
                "events lost of {calls}, median: bpftrace {}, nubpf {}",
                median(&lost[0]),
                median(&lost[1])
            );
        }
        results.pair(overhead);
        // The programs' own run time, as the kernel measures it (BPF_ENABLE_STATS).
        let stats = nubpf_tui::probes::runtime::enable_stats().expect("BPF_ENABLE_STATS");
        let mut in_kernel = Pair::new(
            "per-event",
            format!("program run time, {name} (kernel stats)"),
            "ns/run",
        );
        for round in 0..runs {
            for tool in order(round) {
                let mut running = Running::start(
                    tool,
                    match tool {
                        Tool::Bpftrace => bt,
                        Tool::Nubpf => nb,
                    },
                    &[],
                );
                running.attached();
                getpid_loop(calls / 4);
                let (count, ns) = programs_of(running.pid())
                    .iter()
                    .fold((0u64, 0u128), |(r, t), p| {
                        (r + p.run_count(), t + p.run_time().as_nanos())
                    });
                running.stop();
                let per_run = ns as f64 / count.max(1) as f64;
                match tool {
                    Tool::Bpftrace => in_kernel.bpftrace.push(per_run),
                    Tool::Nubpf => in_kernel.nubpf.push(per_run),
                }
            }
        }
        drop(stats);
        results.pair(in_kernel);
    }
    results.single(
        "per-event",
        "getpid without probes",
        format!("{:.0} ns/call median", median(&bare_all)),
    );
}

// ---------------------------------------------------------------------------------------
// 5. Output throughput under a syscall flood

fn throughput(results: &mut Results, runs: usize, testee: &Path) {
    const CALLS: u64 = 2_000_000;
    println!("records/s to stdout under a getpid flood of {CALLS} calls:");
    let bt = r#"tracepoint:syscalls:sys_enter_getpid /comm == "testee"/ { printf("%d %s\n", pid, comm); }"#;
    let nb = r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| if $e.comm == "testee" { emit {pid: $e.pid, comm: $e.comm} } }"#;
    let cmd = format!("{} getpid {CALLS}", testee.display());
    let mut rate = Pair::new("throughput", "records/s to stdout", "records/s").higher_is_better();
    let mut delivered = [Vec::new(), Vec::new()];
    let mut lost = [Vec::new(), Vec::new()];
    for round in 0..runs {
        for tool in order(round) {
            let (script, i) = match tool {
                Tool::Bpftrace => (bt, 0),
                Tool::Nubpf => (nb, 1),
            };
            let mut running = Running::start(tool, script, &["-c", &cmd]);
            let f = running.wait(Duration::from_secs(300));
            assert!(f.status.success(), "{tool:?} failed:\n{}", f.stderr);
            match tool {
                Tool::Bpftrace => rate.bpftrace.push(f.stdout.rate()),
                Tool::Nubpf => rate.nubpf.push(f.stdout.rate()),
            }
            delivered[i].push(f.stdout.records as f64);
            lost[i].push(f.lost() as f64);
        }
    }
    rate.note = format!(
        "of {CALLS} events, median delivered / reported lost: bpftrace {} / {}, nubpf {} / {} \
         (bpftrace printf text vs nubpf --format json)",
        median(&delivered[0]),
        median(&lost[0]),
        median(&delivered[1]),
        median(&lost[1])
    );
    results.pair(rate);
}

// ---------------------------------------------------------------------------------------
// 6. The workbench alone

fn workbench(results: &mut Results) {
    println!("workbench:");
    let catalogue = Arc::new(Catalogue::system());
    let m = tui::million_rows(catalogue.clone());
    results.single(
        "workbench",
        "frame render, 160×48, 1 M rows buffered",
        format!(
            "{:.2} ms median of 200",
            tui::quantile(&m.frames, 0.5).as_secs_f64() * 1e3
        ),
    );
    results.single(
        "workbench",
        "ingesting 1 M rows into a tab",
        format!(
            "{:.2} s ({:.0} k rows/s)",
            m.ingest.as_secs_f64(),
            1e3 / m.ingest.as_secs_f64()
        ),
    );
    results.single(
        "workbench",
        "resident memory with 1 M rows buffered",
        format!(
            "{:.0} MiB in all, +{:.0} MiB for the rows ({:.0} bytes/row)",
            m.resident_mib,
            m.added_mib,
            m.added_mib * 1048576.0 / 1e6
        ),
    );
    let typing = tui::keystrokes(catalogue.clone(), tui::Typing::TypicalEdit);
    results.single(
        "workbench",
        format!(
            "keystroke → diagnostic drawn, typing a probe ({} keys)",
            typing.len()
        ),
        format!(
            "median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
            tui::quantile(&typing, 0.5).as_secs_f64() * 1e3,
            tui::quantile(&typing, 0.9).as_secs_f64() * 1e3,
            tui::quantile(&typing, 1.0).as_secs_f64() * 1e3
        ),
    );
}

// ---------------------------------------------------------------------------------------
// Report

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let virt = if cpuinfo.contains(" hypervisor") {
        "virtual machine"
    } else {
        "bare metal"
    };
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
        })
        .map_or("unknown".into(), |kb| format!("{:.0} GiB", kb / 1048576.0));
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    // bench/run.sh asks git as the checkout's owner; root may be refused ("dubious ownership").
    let commit = std::env::var("NUBPF_BENCH_COMMIT")
        .ok()
        .or_else(|| {
            command_line(
                "git",
                &[
                    "-C",
                    env!("CARGO_MANIFEST_DIR"),
                    "describe",
                    "--always",
                    "--dirty",
                ],
            )
        })
        .unwrap_or_else(|| "unknown".into());
    vec![
        (
            "CPU",
            format!(
                "{model}, {} logical CPUs ({virt})",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ),
        ),
        ("memory", mem),
        ("system", os),
        (
            "kernel",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        (
            "bpftrace",
            command_line("bpftrace", &["--version"]).unwrap_or_else(|| "unknown".into()),
        ),
        ("nubpf", format!("commit {commit}, bench profile")),
    ]
}

fn markdown(results: &Results, runs: usize, took: Duration, svg_name: &str) -> String {
    let mut md = String::new();
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let _ = writeln!(md, "# nubpf and bpftrace side by side\n");
    let _ = writeln!(
        md,
        "Taken {date} by `bench/run.sh` (benches/compare.rs) in {:.0} s. Medians of {runs} \
         runs per tool; the ratio is the median of the pair-by-pair ratios (the tools alternate, \
         A B B A …, so drift cancels). `nubpf ÷ bpftrace` below 1 means nubpf is cheaper or \
         faster, except for records/s, where above 1 is better.\n",
        took.as_secs_f64()
    );
    let _ = writeln!(md, "| machine | |\n|---|---|");
    for (k, v) in machine() {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(
        md,
        "\n| | figure | unit | bpftrace | nubpf | nubpf ÷ bpftrace | notes |\n|---|---|---|---:|---:|---:|---|"
    );
    for p in &results.pairs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.3} | {} |",
            p.section,
            p.name,
            p.unit,
            fmt_value(median(&p.bpftrace)),
            fmt_value(median(&p.nubpf)),
            p.ratio(),
            p.note
        );
    }
    let _ = writeln!(md, "\n| | nubpf alone | |\n|---|---|---|");
    for s in &results.singles {
        let _ = writeln!(md, "| {} | {} | {} |", s.section, s.name, s.value);
    }
    let _ = writeln!(
        md,
        "\n![How many times better nubpf does, per figure]({svg_name})\n"
    );
    let _ = writeln!(
        md,
        "Compile time is the whole process (`bpftrace --emit-elf` vs `nubpf-tui check \
         --emit-elf`), start-up included. Start → attached is from spawning the tool to its \
         signal that every probe is attached (bpftrace's `BEGIN` printing, which it runs after \
         attaching; nubpf's `attached` line). Per-event overhead is the extra time of a getpid \
         call in this process while the other tool's probe is attached and its output is read; \
         program run time comes from the kernel's BPF_ENABLE_STATS. Instructions are the \
         kernel's translated count of the probe programs while attached (what `bpftool prog \
         dump xlated` lists, read from the kernel's program info; bpftrace's BEGIN excluded). \
         Throughput runs `testee getpid 2000000` under `-c` with a `comm` filter, and counts \
         the record lines arriving on a pipe between the first and the last."
    );
    md
}

fn chart(results: &Results, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    nubpf_tui::app::session::plot::register_font();
    let bars: Vec<(&str, f64)> = results
        .pairs
        .iter()
        .map(|p| (p.name.as_str(), p.advantage()))
        .filter(|(_, a)| a.is_finite() && *a > 0.0)
        .collect();
    let height = 120 + 28 * bars.len() as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let hi = bars.iter().map(|b| b.1).fold(2.0f64, f64::max) * 1.5;
    let lo = bars.iter().map(|b| b.1).fold(0.5f64, f64::min) / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "nubpf vs bpftrace: times better (> 1: nubpf wins; log scale)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(420)
        .build_cartesian_2d(
            (lo..hi).log_scale(),
            (0..bars.len().saturating_sub(1)).into_segmented(),
        )?;
    // Row `i` of `bars` is drawn top-down: segment `n - 1 - i`.
    let n = bars.len();
    let row = |i: usize| n - 1 - i;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(s) if *s < n => bars[row(*s)].0.to_string(),
            _ => String::new(),
        })
        .x_desc("nubpf advantage (×)")
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, a))| {
        let y = row(i);
        let color = if *a >= 1.0 {
            RGBColor(46, 125, 50)
        } else {
            RGBColor(198, 40, 40)
        };
        // From 1× to the advantage: right of the line nubpf wins, left of it bpftrace does.
        let mut bar = Rectangle::new(
            [
                (1.0, SegmentValue::Exact(y)),
                (*a, SegmentValue::Exact(y + 1)),
            ],
            color.mix(0.8).filled(),
        );
        bar.set_margin(5, 5, 0, 0);
        bar
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, a))| {
        Text::new(
            format!(" {a:.2}×"),
            (a.max(1.0), SegmentValue::CenterOf(row(i))),
            TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    chart.draw_series(LineSeries::new(
        [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
        BLACK,
    ))?;
    root.present()?;
    Ok(())
}

/// Gives a file written as root under sudo back to the user who ran sudo.
fn give_back(path: &Path) {
    let id = |v| std::env::var(v).ok().and_then(|s| s.parse::<u32>().ok());
    if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
        let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
}

// ---------------------------------------------------------------------------------------

const USAGE: &str = "usage: compare [--runs N] [--out DIR] [--only SECTION]\n\
  --runs N        pairs per figure (default 5, at least 1)\n\
  --out DIR       where latest.md and latest.svg go (default bench/results);\n\
                  with --only, latest-SECTION.md and .svg\n\
  --only SECTION  start (compile, start, size), per-event, throughput or workbench";

const SECTIONS: [&str; 4] = ["start", "per-event", "throughput", "workbench"];

fn main() {
    let mut runs = 5usize;
    let mut out = PathBuf::from(RESULTS);
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--runs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => runs = n,
                _ => {
                    eprintln!("{USAGE}");
                    std::process::exit(2)
                }
            },
            "--only" => match args.next() {
                Some(s) if SECTIONS.contains(&s.as_str()) => only = Some(s),
                _ => {
                    eprintln!("{USAGE}");
                    std::process::exit(2)
                }
            },
            "--out" => match args.next() {
                Some(d) => out = PathBuf::from(d),
                None => {
                    eprintln!("{USAGE}");
                    std::process::exit(2)
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("compare: unknown argument {other}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("compare: needs root to load probes (run `sudo bench/run.sh`)");
        std::process::exit(3);
    }
    if command_line("bpftrace", &["--version"]).is_none() {
        eprintln!("compare: bpftrace is not installed (`apt-get install bpftrace`)");
        std::process::exit(3);
    }
    common::ensure_tracefs();
    let testee = common::testee();
    let scratch = Scratch(std::env::temp_dir().join(format!("nubpf-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).expect("scratch directory");

    let started = Instant::now();
    let mut results = Results::default();
    let wanted = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if wanted("start") {
        compile_and_start(&mut results, &workloads(&testee), runs, &scratch.0);
    }
    if wanted("per-event") {
        per_event(&mut results, runs);
    }
    if wanted("throughput") {
        throughput(&mut results, runs, &testee);
    }
    if wanted("workbench") {
        workbench(&mut results);
    }
    let took = started.elapsed();

    std::fs::create_dir_all(&out).expect("results directory");
    // A partial run never replaces the full results.
    let stem = match &only {
        Some(section) => format!("latest-{section}"),
        None => "latest".to_string(),
    };
    let svg_name = format!("{stem}.svg");
    let (md_path, svg_path) = (out.join(format!("{stem}.md")), out.join(&svg_name));
    let md = markdown(&results, runs, took, &svg_name);
    std::fs::write(&md_path, &md).expect("write the results table");
    give_back(&md_path);
    if let Err(e) = chart(&results, &svg_path) {
        eprintln!("compare: cannot draw {}: {e}", svg_path.display());
    }
    give_back(&svg_path);
    println!(
        "\n{md}\nwritten: {} and {}",
        md_path.display(),
        svg_path.display()
    );
}
