//! Compile-time benchmark: source text → object bytes for the four seed snippets, with a
//! warm catalogue (as in the editor, where the catalogue is read once). Prints the median
//! and the 90th percentile. Run with `cargo bench --bench compile` (tracefs readable, so
//! as root, for the tracepoint snippet).

use std::time::{Duration, Instant};

use nubpf_tui::probes::catalogue::Catalogue;
use nubpf_tui::probes::front;

const SEEDS: [(&str, &str); 4] = [
    (
        "kprobe do_sys_open + if/emit",
        r#"bpf_kprobe "do_sys_open" {|ctx| if $ctx.filename == "secret.txt" { emit($ctx.pid) } }"#,
    ),
    (
        "tracepoint count()",
        r#"bpf_tracepoint "syscalls:sys_enter_openat" {|event| count() }"#,
    ),
    (
        "uprobe bash readline",
        r#"bpf_uprobe "/bin/bash" "readline" {|ctx| emit($ctx.line) }"#,
    ),
    (
        "kprobe vfs_read + pipeline",
        r#"bpf_kprobe "vfs_read" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid | each {|group| {pid: $group.name, count: ($group.items | length)}}"#,
    ),
];

fn main() {
    let catalogue = Catalogue::system();
    let t = Instant::now();
    for (_, src) in SEEDS {
        let _ = front::compile(src, &catalogue);
    }
    println!(
        "first compile of all four (engine state + catalogue reads): {:?}",
        t.elapsed()
    );
    let runs = 400;
    for (name, src) in SEEDS {
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let (script, diags) = front::compile(src, &catalogue);
                let elapsed = t.elapsed();
                assert!(script.is_some(), "{name}: {diags:?}");
                elapsed
            })
            .collect();
        times.sort();
        println!(
            "{name:32} median {:>9.1?}  p90 {:>9.1?}  ({runs} runs)",
            times[runs / 2],
            times[runs * 9 / 10]
        );
    }
}
