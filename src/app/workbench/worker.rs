//! Background work of the workbench: compiling on every edit, and one thread per attached
//! probe that loads, attaches, reads and finally detaches it. Nothing here blocks the UI:
//! results come back as [`Event`]s.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nu_protocol::{Span as NuSpan, Value};

use super::state::{AttachFailure, Event};
use crate::app::pipeline::Pipeline;
use crate::app::reach::{self, Reach};
use crate::app::session::record::{Columns, Item, Recorder};
use crate::app::values;
use crate::probes::catalogue::Catalogue;
use crate::probes::front::{self, Diagnostic, Script};
use crate::probes::runtime::decode::Value as Decoded;
use crate::probes::runtime::features::{Features, Probed};
use crate::probes::runtime::{LoadError, LoadedModule, Runtime};

/// Records kept for re-evaluating a probe's user-space pipeline.
const WINDOW: usize = 10_000;

/// Compiles the newest source it is sent; older requests queued behind it are skipped.
pub fn spawn_compiler(catalogue: Arc<Catalogue>, events: Sender<Event>) -> Sender<(u64, String)> {
    let (tx, rx) = std::sync::mpsc::channel::<(u64, String)>();
    std::thread::spawn(move || {
        while let Ok(mut job) = rx.recv() {
            while let Ok(newer) = rx.try_recv() {
                job = newer;
            }
            let (generation, source) = job;
            let started = Instant::now();
            let (script, diagnostics) = front::compile(&source, &catalogue);
            let event = Event::Compiled {
                generation,
                script: script.map(Arc::new),
                diagnostics,
                took: started.elapsed(),
            };
            if events.send(event).is_err() {
                break;
            }
        }
    });
    tx
}

/// Tells a probe thread to detach.
pub struct Stop;

/// The recording probe threads copy their records into while the workbench records: every
/// record read from the kernel goes to the file, whether or not the UI keeps up with them
/// (a probe thread waits for the writer rather than drop; the kernel counts what the ring
/// buffer cannot hold meanwhile, and those losses are recorded too).
#[derive(Default)]
pub struct RecordTap(Mutex<Option<TapTarget>>);

type TapTarget = (Arc<Recorder>, Arc<HashMap<String, usize>>);

impl RecordTap {
    /// Starts copying the records of the probes in `index` (name → index in the recording).
    pub fn start(&self, recorder: Arc<Recorder>, index: HashMap<String, usize>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((recorder, Arc::new(index)));
    }

    /// Stops copying. Probe threads may still hold the recorder for a moment.
    pub fn stop(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn record(&self, probe: &str, columns: &[String], batch: &[Vec<Decoded>]) {
        // The lock is held only to clone the handles: a blocked write never holds it.
        let Some((recorder, index)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
        else {
            return;
        };
        let Some(&probe) = index.get(probe) else {
            return;
        };
        let names: Arc<[String]> = columns.into();
        for values in batch {
            recorder.write(Item::Record {
                probe,
                columns: Columns::Named(names.clone()),
                ts: recorder.now(),
                values: values.clone(),
            });
        }
    }
}

/// Waits (briefly) until probe threads let go of `recorder`, then finishes the file.
pub fn finish_recording(mut recorder: Arc<Recorder>) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Arc::try_unwrap(recorder) {
            Ok(r) => return r.finish().map_err(|e| e.to_string()),
            Err(shared) if Instant::now() < deadline => {
                recorder = shared;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return Err("the recording is still in use".into()),
        }
    }
}

/// The runtime and what the kernel allows, made once and never on the UI thread: by the
/// warm-up thread the workbench starts when it has the privileges, or by the first probe
/// thread that needs it (which then waits for it, the UI does not).
#[derive(Default)]
pub struct Kernel(std::sync::OnceLock<KernelFacts>);

struct KernelFacts {
    runtime: Mutex<Runtime>,
    /// fentry / fexit programs load here.
    fentry: bool,
    /// kprobes exist here.
    kprobes: bool,
    /// `uname -r`.
    release: String,
}

impl Kernel {
    fn get(&self) -> &KernelFacts {
        self.0.get_or_init(|| {
            let mut runtime = Runtime::new();
            let fentry = Probed::probe(&mut runtime).fentry;
            let features = Features::detect();
            KernelFacts {
                runtime: Mutex::new(runtime),
                fentry,
                kprobes: features.kprobes,
                release: features.release,
            }
        })
    }

    /// Builds the runtime in the background now, so the first attach does not wait for it.
    pub fn warm_up(self: &Arc<Kernel>) {
        let kernel = self.clone();
        std::thread::spawn(move || {
            kernel.get();
        });
    }
}

/// Starts a thread that attaches probe `index` of `script` and streams what it produces.
/// Records go through `records` (bounded: when the UI falls behind, batches are dropped and
/// counted); everything else through `events`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_probe(
    probe: String,
    generation: u64,
    script: Arc<Script>,
    index: usize,
    kernel: Arc<Kernel>,
    tap: Arc<RecordTap>,
    events: Sender<Event>,
    records: SyncSender<Event>,
) -> Sender<Stop> {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<Stop>();
    std::thread::spawn(move || {
        run_probe(
            probe, generation, script, index, kernel, tap, events, records, stop_rx,
        );
    });
    stop_tx
}

/// Loads probe `index` of `script` on its own, and attaches it.
fn load_and_attach(
    runtime: &Mutex<Runtime>,
    script: &Script,
    index: usize,
) -> Result<
    (
        Arc<nubpf_ebpf::Compiled>,
        LoadedModule,
        Option<crate::probes::runtime::EventReader>,
    ),
    AttachFailure,
> {
    let compiled = script
        .probe_object(index)
        .map_err(|d| AttachFailure::from(d.message))?;
    let loaded = {
        let mut rt = runtime.lock().unwrap_or_else(|p| p.into_inner());
        rt.load(compiled.clone())
    };
    let mut module = match loaded {
        Ok(m) => m,
        Err(LoadError::Verifier(r)) if r.insn.is_none() => {
            return Err(format!("the kernel refused to load it: {}", r.io_error).into());
        }
        Err(LoadError::Verifier(r)) => {
            let message = format!("the verifier rejected it: {}", r.message);
            return Err(match r.span {
                Some(span) => Diagnostic::error("verifier", message, span)
                    .with_help("the kernel verifier rejected this code; `nubpf-tui check --dump asm` shows the program")
                    .into(),
                None => message.into(),
            });
        }
        Err(e) => return Err(e.to_string().into()),
    };
    let reader = module.take_events();
    module
        .attach_all()
        .map_err(|e| AttachFailure::from(e.to_string()))?;
    Ok((compiled, module, reader))
}

#[allow(clippy::too_many_arguments)]
fn run_probe(
    probe: String,
    generation: u64,
    script: Arc<Script>,
    index: usize,
    kernel: Arc<Kernel>,
    tap: Arc<RecordTap>,
    events: Sender<Event>,
    records: SyncSender<Event>,
    stop: Receiver<Stop>,
) {
    let started = Instant::now();
    let fail = |e: AttachFailure| {
        let _ = events.send(Event::Attached {
            probe: probe.clone(),
            generation,
            result: Err(e),
            insns: 0,
            mechanism: None,
        });
    };
    let facts = kernel.get();
    let reach = Reach {
        release: &facts.release,
        kprobes: facts.kprobes,
        fentry: facts.fentry,
    };
    if let Some(d) = script
        .probes
        .get(index)
        .and_then(|p| reach::refusal(p, reach, &Catalogue::system()))
    {
        return fail(d.into());
    }
    // A kernel-function probe goes through fentry when the kernel allows it, and falls back
    // to its kprobe when this function refuses fentry (and the kernel has kprobes).
    let mut tries: Vec<(Arc<Script>, Option<String>)> = Vec::new();
    if facts.fentry
        && matches!(
            script.probes.get(index).map(|p| &p.attach),
            Some(
                nubpf_ebpf::program::Attach::Kprobe { .. }
                    | nubpf_ebpf::program::Attach::Kretprobe { .. }
            )
        )
    {
        let mut converted = (*script).clone();
        if converted.use_fentry().is_ok() {
            let mechanism = converted.probes[index]
                .attach
                .kind()
                .section_prefix()
                .to_string();
            tries.push((Arc::new(converted), Some(mechanism)));
        }
    }
    if tries.is_empty() || facts.kprobes {
        tries.push((script, None));
    }
    let mut refused: Option<String> = None;
    let mut attached = None;
    let last = tries.len() - 1;
    for (i, (candidate, mechanism)) in tries.into_iter().enumerate() {
        match load_and_attach(&facts.runtime, &candidate, index) {
            Ok(done) => {
                let mechanism = match (mechanism, &refused) {
                    (None, Some(_)) => Some("kprobe (fentry refused)".to_string()),
                    (m, _) => m,
                };
                attached = Some((candidate, mechanism, done));
                break;
            }
            Err(e) if i < last => refused = Some(e.message),
            Err(mut e) => {
                if let Some(first) = refused {
                    e.message = format!("fentry: {first}; kprobe: {}", e.message);
                }
                return fail(e);
            }
        }
    }
    let Some((script, mechanism, (compiled, mut module, mut reader))) = attached else {
        return fail("nothing to attach".to_string().into());
    };
    let insns = module
        .program_stats(0)
        .map(|s| s.xlated_insns as usize)
        .filter(|n| *n > 0)
        .unwrap_or(compiled.programs[0].code.insns.len());
    let _ = events.send(Event::Attached {
        probe: probe.clone(),
        generation,
        result: Ok(started.elapsed()),
        insns,
        mechanism: mechanism.clone(),
    });

    let pipeline = script
        .probes
        .get(index)
        .and_then(|p| Pipeline::prepare(&script.source, p))
        .and_then(Result::ok);
    let mut window: VecDeque<Value> = VecDeque::new();
    // Records the pipeline has been offered; the window keeps the newest `WINDOW` of them.
    let mut seen = 0u64;
    let mut ui_dropped = 0u64;
    let mut last_stats = Instant::now() - Duration::from_secs(1);
    let mut last_pipeline = Instant::now();
    let mut pipeline_dirty = false;
    loop {
        match stop.try_recv() {
            Ok(Stop) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        let mut drained = 0;
        if let Some(r) = reader.as_mut() {
            let mut batch: Vec<Vec<crate::probes::runtime::decode::Value>> = Vec::new();
            let mut columns: Vec<String> = Vec::new();
            drained = r.drain(|event| {
                let Some(id) = event.id else { return };
                let layout = &compiled.events[id as usize].record;
                if pipeline.is_some() {
                    seen += 1;
                    if window.len() == WINDOW {
                        window.pop_front();
                    }
                    window.push_back(values::record(layout, &event.values, NuSpan::unknown()));
                    pipeline_dirty = true;
                }
                let cols: Vec<String> = layout.fields.iter().map(|f| f.name.clone()).collect();
                if cols != columns && !batch.is_empty() {
                    tap.record(&probe, &columns, &batch);
                    send_records(
                        &records,
                        &probe,
                        generation,
                        std::mem::take(&mut columns),
                        std::mem::take(&mut batch),
                        &mut ui_dropped,
                    );
                }
                columns = cols;
                batch.push(event.values);
            });
            if !batch.is_empty() {
                tap.record(&probe, &columns, &batch);
                send_records(
                    &records,
                    &probe,
                    generation,
                    columns,
                    batch,
                    &mut ui_dropped,
                );
            }
        }
        if last_stats.elapsed() >= Duration::from_millis(250) {
            last_stats = Instant::now();
            if let Ok(snapshots) = module.read_aggregations()
                && !snapshots.is_empty()
            {
                let layouts = module.compiled().aggregations.clone();
                let _ = events.send(Event::Aggregates {
                    probe: probe.clone(),
                    generation,
                    snapshots: layouts.into_iter().zip(snapshots).collect(),
                });
            }
            let kernel_drops: u64 = module.read_drops().unwrap_or_default().iter().sum();
            let hits = module.program_stats(0).map_or(0, |s| s.run_count);
            let _ = events.send(Event::Stats {
                probe: probe.clone(),
                generation,
                hits,
                drops: kernel_drops + ui_dropped,
                kernel_drops,
            });
        }
        if let Some(p) = &pipeline
            && pipeline_dirty
            && last_pipeline.elapsed() >= Duration::from_secs(1)
        {
            last_pipeline = Instant::now();
            pipeline_dirty = false;
            let input: Vec<Value> = window.iter().cloned().collect();
            let left_out = seen - input.len() as u64;
            let _ = events.send(Event::PipelineResult {
                probe: probe.clone(),
                generation,
                window: (left_out > 0).then_some((input.len(), left_out)),
                result: evaluate(p, input, script.source.len()),
            });
        }
        if drained == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    // Detaching waits for a kernel grace period: it happens here, not on the UI thread.
    module.detach_all();
    drop(module);
    let _ = events.send(Event::Detached { probe, generation });
}

fn send_records(
    records: &SyncSender<Event>,
    probe: &str,
    generation: u64,
    columns: Vec<String>,
    batch: Vec<Vec<crate::probes::runtime::decode::Value>>,
    dropped: &mut u64,
) {
    let n = batch.len() as u64;
    match records.try_send(Event::Records {
        probe: probe.to_string(),
        generation,
        columns,
        records: batch,
    }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => *dropped += n,
    }
}

/// Runs a pipeline over a snapshot of records and turns the output into table rows.
fn evaluate(
    p: &Pipeline,
    input: Vec<Value>,
    script_len: usize,
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut out = Vec::new();
    p.run(input.into_iter(), script_len, |v| out.push(v))
        .map_err(|d| {
            let help = d
                .help
                .first()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!("{}{help}", d.message)
        })?;
    let config = nu_protocol::Config::default();
    let mut columns: Vec<String> = Vec::new();
    for v in &out {
        if let Value::Record { val, .. } = v {
            for k in val.columns() {
                if !columns.iter().any(|c| c == k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    if columns.is_empty() {
        columns.push("value".into());
    }
    let rows = out
        .iter()
        .map(|v| match v {
            Value::Record { val, .. } => columns
                .iter()
                .map(|c| {
                    val.get(c)
                        .map_or(String::new(), |x| x.to_expanded_string(", ", &config))
                })
                .collect(),
            other => vec![other.to_expanded_string(", ", &config)],
        })
        .collect();
    Ok((columns, rows))
}

/// Plays a recording into the workbench: rows and aggregation snapshots at recorded speed
/// (or faster, or as fast as possible), pausable and seekable, pipelines re-run each second
/// over the rows played so far.
pub fn spawn_playback(
    playback: Arc<crate::app::session::playback::Playback>,
    speed: Option<f64>,
    events: Sender<Event>,
    records: SyncSender<Event>,
) -> Sender<super::state::ReplayControl> {
    use super::state::{REPLAY_GENERATION, ReplayControl};
    let (tx, rx) = std::sync::mpsc::channel::<ReplayControl>();
    std::thread::spawn(move || {
        let n = playback.probes.len();
        let mut pipelines: Vec<Option<Pipeline>> = playback
            .probes
            .iter()
            .map(|p| {
                let (text, start, end) = p.pipeline.clone()?;
                Pipeline::from_text(&playback.script, &text, nubpf_ebpf::Span::new(start, end)).ok()
            })
            .collect();
        let mut pipeline_source = playback.script.clone();
        let mut position = 0u64;
        let mut speed = speed;
        let mut paused = false;
        let mut sent = vec![0usize; n];
        let mut snapshot_at: Vec<Option<u64>> = vec![None; n];
        let mut last = Instant::now();
        let mut last_status = Instant::now() - Duration::from_secs(1);
        let mut last_pipeline = Instant::now() - Duration::from_secs(1);
        let mut pipelines_dirty = true;
        loop {
            loop {
                match rx.try_recv() {
                    Ok(ReplayControl::TogglePause) => paused = !paused,
                    Ok(ReplayControl::Restart) => position = u64::MAX,
                    Ok(ReplayControl::Seek(delta)) => {
                        let target = (position as i64)
                            .saturating_add(delta)
                            .clamp(0, playback.duration as i64)
                            as u64;
                        // Going back: start over and fast-forward to the target.
                        if target < position {
                            for (i, p) in playback.probes.iter().enumerate() {
                                sent[i] = 0;
                                snapshot_at[i] = None;
                                let _ = events.send(Event::ClearRows {
                                    probe: p.name.clone(),
                                });
                            }
                        }
                        position = target;
                        pipelines_dirty = true;
                    }
                    Ok(ReplayControl::Speed(s)) => speed = s,
                    Ok(ReplayControl::SetPipeline {
                        probe,
                        text,
                        span,
                        source,
                    }) => {
                        if let Some(i) = playback.probes.iter().position(|p| p.name == probe) {
                            match Pipeline::from_text(&source, &text, span) {
                                Ok(p) => {
                                    pipelines[i] = Some(p);
                                    pipeline_source = source;
                                    pipelines_dirty = true;
                                }
                                Err(d) => {
                                    let _ = events.send(Event::PipelineResult {
                                        probe,
                                        generation: REPLAY_GENERATION,
                                        result: Err(d.message),
                                        window: None,
                                    });
                                }
                            }
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if position == u64::MAX {
                position = 0;
                for (i, p) in playback.probes.iter().enumerate() {
                    sent[i] = 0;
                    snapshot_at[i] = None;
                    let _ = events.send(Event::ClearRows {
                        probe: p.name.clone(),
                    });
                }
                pipelines_dirty = true;
            }
            let elapsed = last.elapsed();
            last = Instant::now();
            if !paused {
                position = match speed {
                    None => playback.duration,
                    Some(s) => position.saturating_add((elapsed.as_nanos() as f64 * s) as u64),
                }
                .min(playback.duration);
            }
            for (i, p) in playback.probes.iter().enumerate() {
                let upto = p.rows.partition_point(|(ts, _)| *ts <= position);
                while sent[i] < upto {
                    let end = upto.min(sent[i] + 5_000);
                    let batch = p.rows[sent[i]..end]
                        .iter()
                        .map(|(_, v)| v.clone())
                        .collect();
                    if records
                        .send(Event::Records {
                            probe: p.name.clone(),
                            generation: REPLAY_GENERATION,
                            columns: p.columns.clone(),
                            records: batch,
                        })
                        .is_err()
                    {
                        return;
                    }
                    sent[i] = end;
                    pipelines_dirty = true;
                }
                let latest = p.snapshots.partition_point(|(at, _)| *at <= position);
                if latest > 0 && snapshot_at[i] != Some(p.snapshots[latest - 1].0) {
                    let (at, snaps) = &p.snapshots[latest - 1];
                    snapshot_at[i] = Some(*at);
                    let _ = events.send(Event::Aggregates {
                        probe: p.name.clone(),
                        generation: REPLAY_GENERATION,
                        snapshots: p
                            .layouts
                            .iter()
                            .cloned()
                            .zip(snaps.iter().cloned())
                            .collect(),
                    });
                }
            }
            if pipelines_dirty && last_pipeline.elapsed() >= Duration::from_millis(500) {
                pipelines_dirty = false;
                last_pipeline = Instant::now();
                for (i, p) in playback.probes.iter().enumerate() {
                    let Some(pipeline) = &pipelines[i] else {
                        continue;
                    };
                    let layout = nubpf_ebpf::layout::RecordLayout {
                        fields: p
                            .columns
                            .iter()
                            .map(|c| nubpf_ebpf::layout::FieldLayout {
                                name: c.clone(),
                                ty: nubpf_ebpf::ir::Ty::Str { cap: 1 },
                                offset: 0,
                            })
                            .collect(),
                        size: 0,
                    };
                    let input: Vec<Value> = p.rows[..sent[i]]
                        .iter()
                        .map(|(_, v)| values::record(&layout, v, NuSpan::unknown()))
                        .collect();
                    let _ = events.send(Event::PipelineResult {
                        probe: p.name.clone(),
                        generation: REPLAY_GENERATION,
                        result: evaluate(pipeline, input, pipeline_source.len()),
                        window: None,
                    });
                }
            }
            if last_status.elapsed() >= Duration::from_millis(200) {
                last_status = Instant::now();
                let _ = events.send(Event::ReplayStatus {
                    position,
                    duration: playback.duration,
                    speed,
                    paused,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    tx
}
