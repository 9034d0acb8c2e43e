//! Runtime benchmarks (root): the cost a count-per-pid probe adds to each `getpid` call, and
//! how many records per second `run --format json` delivers under a syscall flood, with the
//! records lost. Run with `sudo -E cargo bench --bench runtime`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front;
use nubpf_tui::probes::runtime::Runtime;

fn getpid_ns(calls: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..calls {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    t.elapsed().as_nanos() as f64 / calls as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn per_call_overhead() {
    let catalogue = Catalogue::system();
    let calls = 2_000_000;
    let probes = [
        (
            "count per pid",
            r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| count --by $e.pid }"#,
        ),
        (
            "emit pid+comm",
            r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| emit {pid: $e.pid, comm: $e.comm} }"#,
        ),
    ];
    let mut runtime = Runtime::new();
    for (name, src) in probes {
        let (script, diags) = front::compile(src, &catalogue);
        let script = script.unwrap_or_else(|| panic!("{diags:?}"));
        // Alternate bare and probed runs so drift cancels; medians of 7 pairs.
        let (mut bare, mut probed) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            bare.push(getpid_ns(calls));
            let mut module = runtime.load(script.compiled.clone()).expect("load");
            let mut reader = module.take_events();
            module.attach_all().expect("attach");
            // A reader drains concurrently, as `run` does, so the ring buffer never fills.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let drainer = reader.take().map(|mut r| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if r.drain(|_| {}) == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            });
            probed.push(getpid_ns(calls));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(d) = drainer {
                let _ = d.join();
            }
            let drops: u64 = module.read_drops().unwrap_or_default().iter().sum();
            if drops > 0 {
                println!("  ({name}: {drops} records lost in one run)");
            }
        }
        let (b, p) = (median(bare), median(probed));
        println!(
            "getpid bare {b:.0} ns, with {name:14} {p:.0} ns: +{:.0} ns per call",
            p - b
        );
    }
}

fn json_throughput() {
    let testee = common::testee();
    let calls = 3_000_000u64;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_nubpf-tui"))
            .args([
                "run",
                "-e",
                r#"bpf_tracepoint "syscalls:sys_enter_getpid" {|e| emit {pid: $e.pid, comm: $e.comm} }"#,
                "--format",
                "json",
                "-c",
                &format!("{} getpid {calls}", testee.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run nubpf-tui");
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let summary = stderr
            .lines()
            .find(|l| l.contains(" records, "))
            .unwrap_or("");
        let number = |word: &str| -> u64 {
            summary
                .split(", ")
                .flat_map(|p| p.split(": "))
                .find_map(|p| p.strip_suffix(word)?.trim().parse().ok())
                .unwrap_or(0)
        };
        let (records, lost) = (number(" records"), number(" lost"));
        let rate = records as f64 / elapsed.as_secs_f64();
        println!(
            "run --format json > /dev/null: {records} records ({lost} lost) in {elapsed:.2?}: {:.2} M records/s",
            rate / 1e6
        );
        rates.push(rate);
    }
    println!("median {:.2} M records/s", median(rates) / 1e6);
}

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("runtime benchmarks need root; skipped");
        return;
    }
    common::ensure_tracefs();
    per_call_overhead();
    json_throughput();
}
