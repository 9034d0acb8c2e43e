//! `nubpf-tui run`: compile a script, attach every probe, stream what they emit through the
//! probes' Nushell pipelines to stdout, and print the in-kernel aggregations at the end.
//!
//! Threads: a pump drains the ring buffer every millisecond and routes records (straight to
//! NDJSON, or into each probe's pipeline channel); one thread per user-space pipeline runs
//! Nushell; the main thread waits on tokio for a reason to stop (signal, duration, count,
//! traced command exited, every pipeline done), then detaches, drains, and prints the rest.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nu_protocol::{Span as NuSpan, Value};
use nubpf_ebpf::program::Attach;
use tokio::signal::unix::{SignalKind, signal};

use super::output::{self, Format, TableRenderer};
use super::pipeline::{ChannelInput, Pipeline};
use super::reach::{self, Reach};
use super::session::record::{Columns, Item, Recorder};
use super::values;
use crate::probes::catalogue::Catalogue;
use crate::probes::front::{self, Diagnostic, Script, diagnostic};
use crate::probes::runtime::features::{self, Features, Probed};
use crate::probes::runtime::{AttachError, LoadError, LoadedModule, Runtime, decode};

/// Exit codes of `run` (and `check`), documented in `--help`.
pub mod exit {
    /// Diagnostics in the script, or its pipeline failed.
    pub const SCRIPT: u8 = 1;
    /// Bad arguments or unreadable files.
    pub const USAGE: u8 = 2;
    /// Not root and missing CAP_BPF / CAP_PERFMON.
    pub const PRIVILEGES: u8 = 3;
    /// The kernel cannot run the probes (missing feature, verifier, attach failure).
    pub const KERNEL: u8 = 4;
    /// The command given with `-c` could not be started.
    pub const COMMAND: u8 = 5;
}

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub source_name: String,
    pub source: String,
    pub format: Format,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub command: Option<String>,
    pub pid: Option<u32>,
    pub interval: Option<Duration>,
    /// Record the session into this new SQLite file.
    pub record: Option<PathBuf>,
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub buffer_size: u32,
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal,
    Duration,
    Count,
    CommandExited,
    PipelinesDone,
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("nubpf-tui: {message}");
    ExitCode::from(code)
}

/// Runs a script until something stops it.
pub fn run(opts: RunOptions) -> ExitCode {
    if let Err(message) = super::privileges::check() {
        return fail(exit::PRIVILEGES, message);
    }
    // The loader parses vmlinux BTF while the script compiles.
    let runtime = Runtime::in_background();
    let features = Features::detect();
    if !features.tracefs {
        match features::mount_tracefs() {
            Ok(()) => eprintln!(
                "nubpf-tui: mounted tracefs at {}",
                crate::probes::catalogue::TRACEFS
            ),
            Err(e) => {
                return fail(
                    exit::KERNEL,
                    format!(
                        "tracefs is not mounted and mounting it failed ({e})\n  hint: sudo mount -t tracefs tracefs {}",
                        crate::probes::catalogue::TRACEFS
                    ),
                );
            }
        }
    }
    let catalogue = Catalogue::system();
    let (script, diagnostics) = front::compile(&opts.source, &catalogue);
    eprint!(
        "{}",
        diagnostic::render(&opts.source_name, &opts.source, &diagnostics)
    );
    let Some(mut script) = script else {
        return ExitCode::from(exit::SCRIPT);
    };
    if let Some(pid) = opts.pid
        && let Err(d) = script.restrict_to_pid(pid)
    {
        return report(&opts, &[d], exit::SCRIPT);
    }
    if let Err(d) = script.set_ring_buffer_bytes(opts.buffer_size) {
        return report(&opts, &[d], exit::SCRIPT);
    }
    let mut runtime = runtime.join().unwrap_or_else(|_| Runtime::new());
    // Kernel-function probes go through fentry where the kernel allows it; kprobes remain
    // the fallback should a function refuse fentry.
    let mut fallback = None;
    let kernel_functions = script.probes.iter().any(|p| {
        matches!(
            p.attach,
            Attach::Kprobe { .. }
                | Attach::Kretprobe { .. }
                | Attach::Fentry { .. }
                | Attach::Fexit { .. }
        )
    });
    let fentry = kernel_functions && Probed::probe(&mut runtime).fentry;
    let reach = Reach {
        release: &features.release,
        kprobes: features.kprobes,
        fentry,
    };
    if let Some(d) = script
        .probes
        .iter()
        .find_map(|p| reach::refusal(p, reach, &catalogue))
    {
        return report(&opts, &[d], exit::KERNEL);
    }
    if script.uses_kprobes() && fentry {
        let kprobes = script.clone();
        match script.use_fentry() {
            Ok(_) => {
                eprintln!("nubpf-tui: kernel-function probes attach through fentry");
                fallback = features.kprobes.then_some(kprobes);
            }
            Err(d) => return report(&opts, &[d], exit::SCRIPT),
        }
    }
    for p in &script.probes {
        if let Some(note) = &p.note {
            eprintln!("nubpf-tui: {}: {note}", p.name);
        }
    }
    start(opts, script, fallback, runtime)
}

fn report(opts: &RunOptions, d: &[Diagnostic], code: u8) -> ExitCode {
    eprint!("{}", diagnostic::render(&opts.source_name, &opts.source, d));
    ExitCode::from(code)
}

/// Where the records of one probe go.
enum Sink {
    /// Straight to stdout as NDJSON.
    Json,
    /// Into the output buffer as Nushell values (tables, NUON).
    Values,
    /// Into a user-space pipeline; `None` once it stopped reading.
    Pipeline(Option<SyncSender<Value>>),
}

/// Printed output shared by the pump and the pipeline threads.
struct Output {
    out: BufWriter<std::io::Stdout>,
    format: Format,
    renderer: TableRenderer,
    /// Table rows waiting for the next flush, per probe.
    pending: HashMap<usize, Vec<Value>>,
    names: Vec<String>,
    several: bool,
}

impl Output {
    fn push(&mut self, probe: usize, v: Value) {
        match self.format {
            Format::Table => self.pending.entry(probe).or_default().push(v),
            Format::Json => {
                let _ = output::write_json_value(&mut self.out, &v);
                let _ = self.out.write_all(b"\n");
            }
            Format::Nuon => {
                let _ = writeln!(self.out, "{}", output::nuon_line(&v));
            }
        }
    }

    /// Prints pending table rows, one table per probe.
    fn flush(&mut self) {
        let mut probes: Vec<usize> = self.pending.keys().copied().collect();
        probes.sort_unstable();
        for p in probes {
            let rows = self.pending.remove(&p).unwrap_or_default();
            if rows.is_empty() {
                continue;
            }
            if self.several {
                let _ = writeln!(self.out, "{}:", self.names[p]);
            }
            let table = if rows.len() == 1 {
                self.renderer
                    .render(rows.into_iter().next().unwrap_or_default())
            } else {
                self.renderer.render(Value::list(rows, NuSpan::unknown()))
            };
            let _ = writeln!(self.out, "{table}");
        }
        let _ = self.out.flush();
    }
}

/// Loads and attaches the script, then drives it until it stops.
fn start(
    opts: RunOptions,
    script: Script,
    fallback: Option<Script>,
    mut runtime: Runtime,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(exit::KERNEL, format!("starting the runtime: {e}")),
    };
    let result = rt.block_on(async move {
        // Signal handlers first: a SIGTERM right after attaching must stop the run cleanly,
        // not kill the process with its default action.
        let signals = Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        };
        let mut script = script;
        let mut loaded = runtime.load(script.compiled.clone());
        // A function that refuses fentry (not traceable, `notrace`: the load or the attach
        // fails) goes back to its kprobe; the other probes keep fentry.
        let mut keep = Vec::new();
        if let Some(kprobes) = &fallback {
            while let Err(e) = &loaded {
                let Some(retry) = failed_program(e)
                    .and_then(|name| script.compiled.programs.iter().position(|p| p.name == name))
                    .and_then(|i| fall_back(kprobes, &mut keep, i, e))
                else {
                    break;
                };
                script = retry;
                loaded = runtime.load(script.compiled.clone());
            }
        }
        let mut module = match loaded {
            Ok(m) => m,
            Err(LoadError::Verifier(r)) if r.insn.is_none() => {
                // No instruction in the log: the kernel refused the program before verifying.
                return fail(
                    exit::KERNEL,
                    format!(
                        "the kernel refused to load `{}`: {}\n  hint: `nubpf-tui info` shows what this kernel supports",
                        r.program, r.io_error
                    ),
                );
            }
            Err(LoadError::Verifier(r)) => {
                let span = r.span.or_else(|| script.probes.first().map(|p| p.span)).unwrap_or_default();
                let d = Diagnostic::error("verifier", format!("the kernel verifier rejected this probe: {}", r.message), span)
                    .with_label(match r.insn {
                        Some(i) => format!("instruction {i} comes from here"),
                        None => "rejected".into(),
                    })
                    .with_help("this is likely a bug in nubpf's code generation; `nubpf-tui check --dump asm` shows the program");
                eprintln!("{}", r.log);
                return report(&opts, &[d], exit::KERNEL);
            }
            Err(e) => return fail(exit::KERNEL, e),
        };

        // Pipelines are parsed before anything attaches, so their errors cost nothing.
        let mut pipelines = Vec::new();
        for p in &script.probes {
            match Pipeline::prepare(&script.source, p) {
                None => pipelines.push(None),
                Some(Ok(pipeline)) => pipelines.push(Some(pipeline)),
                Some(Err(d)) => return report(&opts, &[d], exit::SCRIPT),
            }
        }

        let recorder = match &opts.record {
            Some(path) => match Recorder::create(path, &script, &Features::detect().release) {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => return fail(exit::USAGE, e),
            },
            None => None,
        };

        let child = match &opts.command {
            Some(cmd) => match BlockedChild::spawn(cmd) {
                Ok(c) => Some(c),
                Err(e) => return fail(exit::COMMAND, e),
            },
            None => None,
        };

        let attach_started = Instant::now();
        while let Err(e) = module.attach_all() {
            let retry = match (&e, &fallback) {
                (AttachError::Program { index, .. }, Some(kprobes)) => {
                    fall_back(kprobes, &mut keep, *index, &e)
                }
                _ => None,
            };
            // Replacing the module detaches what it had attached.
            match retry.map(|r| (runtime.load(r.compiled.clone()), r)) {
                Some((Ok(m), r)) => {
                    module = m;
                    script = r;
                }
                other => {
                    if let Some(c) = child {
                        c.kill();
                    }
                    let e = match other {
                        Some((Err(load), _)) => load.to_string(),
                        _ => e.to_string(),
                    };
                    return fail(exit::KERNEL, format!("{e}\n  hint: `nubpf-tui info` shows what this kernel supports"));
                }
            }
        }
        let reader = module.take_events();
        eprintln!(
            "nubpf-tui: attached {} probe{} in {:.1?}; Ctrl-C to stop",
            script.probes.len(),
            if script.probes.len() == 1 { "" } else { "s" },
            attach_started.elapsed()
        );
        super::test_panic("attached");
        let started = Started {
            module,
            reader,
            pipelines,
            child,
            recorder,
        };
        drive(opts, script, started, signals).await
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Probe `index` of `kprobes` (the script as written) back on its kprobe while the others
/// stay on fentry, after fentry failed for it with `why`. `None` when it is not a kprobe
/// or already went back (nothing else to try).
fn fall_back(
    kprobes: &Script,
    keep: &mut Vec<usize>,
    index: usize,
    why: &dyn std::fmt::Display,
) -> Option<Script> {
    let probe = kprobes.probes.get(index)?;
    if keep.contains(&index)
        || !matches!(
            probe.attach,
            Attach::Kprobe { .. } | Attach::Kretprobe { .. }
        )
    {
        return None;
    }
    eprintln!(
        "nubpf-tui: {}: fentry refused ({why}); using a kprobe",
        probe.name
    );
    keep.push(index);
    let mut retry = kprobes.clone();
    retry.use_fentry_except(keep).ok()?;
    Some(retry)
}

/// The program a load failure names, if any.
fn failed_program(e: &LoadError) -> Option<&str> {
    match e {
        LoadError::Verifier(r) => Some(&r.program),
        LoadError::Program { program, .. } | LoadError::NoBtf { program } => Some(program),
        LoadError::Object(_) | LoadError::Internal(_) => None,
    }
}

/// SIGINT and SIGTERM streams, registered before anything attaches.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

/// Waits for a signal from `s` (forever when it could not be registered).
async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) {
    match s.as_mut() {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// What exists once the probes are attached.
struct Started {
    module: LoadedModule,
    reader: Option<crate::probes::runtime::EventReader>,
    pipelines: Vec<Option<Pipeline>>,
    child: Option<BlockedChild>,
    recorder: Option<Arc<Recorder>>,
}

/// Runs the session's async part: everything after attaching.
async fn drive(opts: RunOptions, script: Script, started: Started, signals: Signals) -> ExitCode {
    let Started {
        mut module,
        reader,
        pipelines,
        child,
        recorder,
    } = started;
    let Signals {
        int: mut sigint,
        term: mut sigterm,
    } = signals;
    let compiled = script.compiled.clone();
    let stop_flag = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::unbounded_channel::<Stop>();
    let output = Arc::new(Mutex::new(Output {
        out: BufWriter::with_capacity(1 << 16, std::io::stdout()),
        format: opts.format,
        renderer: TableRenderer::new(output::terminal_width()),
        pending: HashMap::new(),
        names: script.probes.iter().map(|p| p.name.clone()).collect(),
        several: script.probes.len() > 1,
    }));
    let pipeline_failed = Arc::new(AtomicBool::new(false));

    // Sinks and pipeline threads.
    let mut sinks = Vec::new();
    let mut jobs: Vec<JoinHandle<()>> = Vec::new();
    let mut interrupts = Vec::new();
    for (index, pipeline) in pipelines.into_iter().enumerate() {
        match pipeline {
            None if opts.format == Format::Json => sinks.push(Sink::Json),
            None => sinks.push(Sink::Values),
            Some(pipeline) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Value>(65_536);
                sinks.push(Sink::Pipeline(Some(tx)));
                interrupts.push(pipeline.interrupt());
                let output = output.clone();
                let stop = stop_flag.clone();
                let failed = pipeline_failed.clone();
                let source = script.source.clone();
                let name = opts.source_name.clone();
                jobs.push(std::thread::spawn(move || {
                    let input = ChannelInput { rx, stop };
                    let result = pipeline.run(input, source.len(), |v| {
                        if let Ok(mut o) = output.lock() {
                            o.push(index, v);
                        }
                    });
                    if let Err(d) = result {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut o) = output.lock() {
                            o.flush();
                        }
                        eprint!("{}", diagnostic::render(&name, &source, &[d]));
                    }
                }));
            }
        }
    }

    // The pump.
    let delivered = Arc::new(AtomicU64::new(0));
    let per_probe: Arc<Vec<AtomicU64>> = Arc::new(
        (0..script.probes.len())
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let pump_done = Arc::new(AtomicBool::new(false));
    let pump = {
        let output = output.clone();
        let stop_tx = stop_tx.clone();
        let delivered = delivered.clone();
        let per_probe = per_probe.clone();
        let pump_done = pump_done.clone();
        let limit = opts.count;
        let has_aggregations = !compiled.aggregations.is_empty();
        let recorder = recorder.clone();
        std::thread::spawn(move || {
            let Some(mut reader) = reader else {
                return;
            };
            let mut finished = false;
            loop {
                let last_round = pump_done.load(Ordering::Acquire);
                let mut json = Vec::with_capacity(1 << 16);
                let mut values: Vec<(usize, Value)> = Vec::new();
                let n = reader.drain_raw(|found, bytes| {
                    let Some((id, event)) = found else {
                        return;
                    };
                    let (probe, layout) = (event.probe, &event.record);
                    if limit.is_some_and(|l| delivered.load(Ordering::Relaxed) >= l) {
                        return;
                    }
                    // The NDJSON fast path: nothing else needs the values, so the record
                    // goes from its bytes to its line.
                    if recorder.is_none() && matches!(sinks[probe], Sink::Json) {
                        let _ = values::write_json_raw(&mut json, layout, bytes);
                        delivered.fetch_add(1, Ordering::Relaxed);
                        per_probe[probe].fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    let decoded = decode::decode_fields(layout, bytes);
                    if let Some(r) = &recorder {
                        r.write(Item::Record {
                            probe,
                            columns: Columns::Event(id),
                            ts: r.now(),
                            values: decoded.clone(),
                        });
                    }
                    let delivered_now = match &mut sinks[probe] {
                        Sink::Json => {
                            let _ = values::write_json_record(&mut json, layout, &decoded);
                            true
                        }
                        Sink::Values => {
                            values
                                .push((probe, values::record(layout, &decoded, NuSpan::unknown())));
                            true
                        }
                        Sink::Pipeline(tx) => match tx {
                            None => false,
                            Some(sender) => {
                                let v = values::record(layout, &decoded, NuSpan::unknown());
                                // A full channel blocks: the backpressure reaches the ring
                                // buffer, where losses are counted. A pipeline that stopped
                                // reading (`first 3`) disconnects instead.
                                if sender.send(v).is_ok() {
                                    true
                                } else {
                                    *tx = None;
                                    false
                                }
                            }
                        },
                    };
                    if delivered_now {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        per_probe[probe].fetch_add(1, Ordering::Relaxed);
                    }
                });
                if (!json.is_empty() || !values.is_empty())
                    && let Ok(mut o) = output.lock()
                {
                    let _ = o.out.write_all(&json);
                    for (p, v) in values {
                        o.push(p, v);
                    }
                    if o.format != Format::Table {
                        let _ = o.out.flush();
                    }
                }
                if limit.is_some_and(|l| delivered.load(Ordering::Relaxed) >= l) {
                    let _ = stop_tx.send(Stop::Count);
                }
                let all_pipelines_done =
                    !sinks.is_empty() && sinks.iter().all(|s| matches!(s, Sink::Pipeline(None)));
                if all_pipelines_done && !has_aggregations && !finished {
                    finished = true;
                    let _ = stop_tx.send(Stop::PipelinesDone);
                }
                if last_round {
                    break;
                }
                if n == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            // Dropping the sinks closes the pipelines' inputs.
        })
    };

    // Periodic work: table flushes, lost-event reports, aggregation intervals.
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let mut child_exit = match child.map(BlockedChild::release_and_wait).transpose() {
        Ok(rx) => rx,
        Err(e) => {
            module.detach_all();
            return fail(exit::COMMAND, e);
        }
    };
    let mut last_interval = Instant::now();
    let mut reported_drops = vec![0u64; script.probes.len()];
    let mut last_snapshot = Instant::now();
    let reason = loop {
        let child_wait = async {
            match child_exit.as_mut() {
                Some(rx) => rx.await.ok(),
                None => std::future::pending().await,
            }
        };
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(reason) = stop_rx.recv() => break reason,
            _ = next_signal(&mut sigint) => break Stop::Signal,
            _ = next_signal(&mut sigterm) => break Stop::Signal,
            _ = timeout => break Stop::Duration,
            status = child_wait => {
                if let Some(Some(status)) = status {
                    eprintln!("nubpf-tui: the traced command exited ({status})");
                }
                break Stop::CommandExited;
            }
            _ = ticker.tick() => {
                if let Ok(mut o) = output.lock() {
                    o.flush();
                }
                report_drops(&module, &script, &mut reported_drops, recorder.as_deref());
                if let Some(r) = &recorder
                    && last_snapshot.elapsed() >= Duration::from_secs(1)
                {
                    last_snapshot = Instant::now();
                    record_aggregates(&module, r);
                }
                if let Some(every) = opts.interval
                    && last_interval.elapsed() >= every
                {
                    last_interval = Instant::now();
                    print_aggregations(&module, &output, opts.format);
                }
            }
        }
    };
    let _ = reason;

    // Stop: no new events, then drain what the kernel already wrote.
    module.detach_all();
    pump_done.store(true, Ordering::Release);
    let _ = pump.join();
    stop_flag.store(true, Ordering::Relaxed);
    // A second Ctrl-C while collecting pipelines finish interrupts them.
    let waiting = std::thread::spawn(move || {
        for j in jobs {
            let _ = j.join();
        }
    });
    while !waiting.is_finished() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = next_signal(&mut sigint) => {
                interrupts.iter().for_each(|i| i.store(true, Ordering::Relaxed));
            }
        }
    }
    if let Ok(mut o) = output.lock() {
        o.flush();
    }
    print_aggregations(&module, &output, opts.format);
    report_drops(&module, &script, &mut reported_drops, recorder.as_deref());
    summary(&script, &per_probe, &module);
    if let Some(r) = &recorder {
        record_aggregates(&module, r);
    }
    drop(module);
    if let Some(r) = recorder.and_then(|r| Arc::try_unwrap(r).ok()) {
        match r.finish() {
            Ok(n) => eprintln!(
                "nubpf-tui: recorded {n} records to {}",
                opts.record
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            ),
            Err(e) => eprintln!("nubpf-tui: the recording is incomplete: {e}"),
        }
    }
    if pipeline_failed.load(Ordering::Relaxed) {
        ExitCode::from(exit::SCRIPT)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_aggregations(module: &LoadedModule, output: &Mutex<Output>, format: Format) {
    let layouts = &module.compiled().aggregations;
    if layouts.is_empty() {
        return;
    }
    match module.read_aggregations() {
        Ok(snapshots) => {
            if let Ok(mut o) = output.lock() {
                o.flush();
                let Output { out, renderer, .. } = &mut *o;
                let _ = output::print_aggregations(out, format, layouts, &snapshots, renderer);
            }
        }
        Err(e) => eprintln!("nubpf-tui: reading aggregations failed: {e}"),
    }
}

/// Writes the current aggregation values of every probe to the recording.
fn record_aggregates(module: &LoadedModule, recorder: &Recorder) {
    let Ok(snapshots) = module.read_aggregations() else {
        return;
    };
    let layouts = &module.compiled().aggregations;
    let at = recorder.now();
    let probes: std::collections::BTreeSet<usize> = layouts.iter().map(|l| l.probe).collect();
    for probe in probes {
        let mine = layouts
            .iter()
            .zip(&snapshots)
            .filter(|(l, _)| l.probe == probe)
            .map(|(_, s)| s.clone())
            .collect();
        recorder.write(Item::Aggregates {
            at,
            probe,
            snapshots: mine,
        });
    }
}

/// Reports new ring-buffer losses on stderr (and into the recording).
fn report_drops(
    module: &LoadedModule,
    script: &Script,
    reported: &mut [u64],
    recorder: Option<&Recorder>,
) {
    let Ok(drops) = module.read_drops() else {
        return;
    };
    for (i, (now, before)) in drops.iter().zip(reported.iter_mut()).enumerate() {
        if *now > *before {
            eprintln!(
                "nubpf-tui: {} lost {} events (ring buffer full; {} in all)",
                script.probes.get(i).map_or("?", |p| p.name.as_str()),
                now - *before,
                now
            );
            if let Some(r) = recorder {
                r.write(Item::Lost {
                    at: r.now(),
                    probe: i,
                    lost: now - *before,
                });
            }
            *before = *now;
        }
    }
}

fn summary(script: &Script, per_probe: &[AtomicU64], module: &LoadedModule) {
    let drops = module.read_drops().unwrap_or_default();
    for (i, p) in script.probes.iter().enumerate() {
        let n = per_probe[i].load(Ordering::Relaxed);
        let lost = drops.get(i).copied().unwrap_or(0);
        eprintln!(
            "nubpf-tui: {} ({}): {n} records, {lost} lost",
            p.name,
            p.attach.describe()
        );
    }
}

/// A command forked but held before `exec` until the probes are attached, so its first
/// instruction is already traced. The child stops itself with `SIGSTOP` and the parent waits
/// until it has stopped before attaching anything: whatever the child did to get there
/// happened before any probe existed, so a probe on the child's pid sees the command and
/// nothing of the hand-over (a child blocked in `read` on a gate pipe would be seen by a
/// `vfs_read` probe whenever it reached the read after the attach). `SIGCONT` releases it.
/// (`std::process::Command::spawn` waits for `exec`, which would deadlock against the gate.)
struct BlockedChild {
    pid: libc::pid_t,
    program: String,
    /// The child writes its `exec` errno here; end of file means `exec` succeeded.
    status: std::os::fd::OwnedFd,
}

/// Finds `program` on `PATH` (or takes it as a path when it has a `/`).
fn resolve_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

fn pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl BlockedChild {
    fn spawn(command: &str) -> Result<BlockedChild, String> {
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let argv =
            shell_words::split(command).map_err(|e| format!("cannot parse `-c {command}`: {e}"))?;
        let Some(program) = argv.first().cloned() else {
            return Err("`-c` needs a command".into());
        };
        let path = resolve_program(&program)
            .ok_or_else(|| format!("cannot start `{program}`: not found or not executable"))?;
        let cstr =
            |b: &[u8]| CString::new(b).map_err(|_| format!("`{command}` contains a NUL byte"));
        let c_path = cstr(path.as_os_str().as_bytes())?;
        let c_args = argv
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let c_env = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstr(&kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut arg_ptrs: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        arg_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<*const libc::c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());
        let (status_r, status_w) = pipe()?;
        // SAFETY: after fork the child only calls async-signal-safe functions (close, dup2,
        // raise, execve, write, _exit) on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
                libc::close(status_r.as_raw_fd());
                // The command's stdout goes to stderr: stdout carries the records.
                libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO);
                libc::raise(libc::SIGSTOP);
                libc::execve(c_path.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(status_w.as_raw_fd(), (&errno as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        drop(status_w);
        let child = BlockedChild {
            pid,
            program,
            status: status_r,
        };
        let mut raw = 0;
        // SAFETY: waits for our own child to stop (or, should something kill it, to end).
        let r = unsafe { libc::waitpid(pid, &mut raw, libc::WUNTRACED) };
        if r != pid || !libc::WIFSTOPPED(raw) {
            let why = if r == pid {
                format!("it ended before it could be started (status {raw:#x})")
            } else {
                std::io::Error::last_os_error().to_string()
            };
            if r != pid {
                child.kill();
            }
            return Err(format!("cannot start `{command}`: {why}"));
        }
        Ok(child)
    }

    /// Lets the command run. Fails when it could not `exec`; otherwise returns a channel
    /// that yields its exit status.
    fn release_and_wait(
        self,
    ) -> Result<tokio::sync::oneshot::Receiver<Option<std::process::ExitStatus>>, String> {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::ExitStatusExt;
        let BlockedChild {
            pid,
            program,
            status,
        } = self;
        // SAFETY: continues our own stopped child.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let mut errno = 0i32;
        // SAFETY: reads at most 4 bytes into an i32.
        let n = unsafe { libc::read(status.as_raw_fd(), (&mut errno as *mut i32).cast(), 4) };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if n != 4 {
            eprintln!("nubpf-tui: started `{program}` (pid {pid})");
        }
        let wait = move || {
            let mut raw = 0;
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(pid, &mut raw, 0) };
            (r == pid).then(|| std::process::ExitStatus::from_raw(raw))
        };
        if n == 4 {
            wait();
            return Err(format!(
                "cannot start `{program}`: {}",
                std::io::Error::from_raw_os_error(errno)
            ));
        }
        std::thread::spawn(move || {
            let _ = tx.send(wait());
        });
        Ok(rx)
    }

    fn kill(self) {
        // SAFETY: signals and reaps our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut raw = 0;
            libc::waitpid(self.pid, &mut raw, 0);
        }
    }
}

/// Reads a script argument: a file path, or the text given with `-e`.
pub fn read_source(
    file: Option<&Path>,
    source: Option<String>,
) -> Result<(String, String), String> {
    match (file, source) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        (None, Some(text)) => Ok(("<expr>".to_string(), text)),
        (None, None) => Err("give a FILE or `-e SOURCE`".into()),
    }
}
