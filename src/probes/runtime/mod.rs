//! The runtime: the only code that calls aya. Loads compiled objects, attaches and detaches
//! their programs, and hands out readers for the ring buffer and the aggregation maps.
//!
//! One [`Runtime`] per process owns the `EbpfLoader` and the parsed vmlinux BTF, both
//! expensive to make (30–80 ms), and reuses them for every load. Dropping a
//! [`LoadedModule`] detaches and unloads everything it holds; detaching a tracepoint blocks
//! for a kernel grace period (40–100 ms), so interactive callers drop modules off the UI
//! thread.

pub mod decode;
pub mod features;
pub mod maps;
mod verifier;

use std::sync::{Arc, OnceLock};

use aya::maps::{MapData, RingBuf};
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::uprobe::UProbeScope;
use aya::programs::{
    BtfTracePoint, FEntry, FExit, KProbe, PerfEvent, ProgramError, RawTracePoint, TestRun,
    TracePoint, UProbe,
};
use aya::{Btf, Ebpf, EbpfLoader};
use nubpf_ebpf::Compiled;
use nubpf_ebpf::codegen::{CompiledProgram, EVENTS_MAP};
use nubpf_ebpf::layout::EventLayout;
use nubpf_ebpf::program::Attach;

pub use verifier::VerifierRejection;

/// The parsed vmlinux BTF, shared by the loader and tp_btf / fentry loads for the life of
/// the process.
fn vmlinux_btf() -> Option<&'static Btf> {
    static BTF: OnceLock<Option<Btf>> = OnceLock::new();
    BTF.get_or_init(|| Btf::from_sys_fs().ok()).as_ref()
}

/// A loader that holds no vmlinux BTF, or `None` when one cannot be made.
///
/// aya 0.14's `EbpfLoader::new` always reads and parses `/sys/kernel/btf/vmlinux` (5 MB,
/// about 20 ms here: most of nubpf's start-up; aya issue #1172), which only CO-RE relocations
/// need, and our objects carry none. So the loader is made on a short-lived thread with a
/// filesystem root of its own (`unshare(CLONE_FS)` + `chroot`), in which that file does not
/// exist: aya's read fails at once and the loader holds `None`, as `.btf(None)` would have
/// set. Nothing outside that thread changes. Without CAP_SYS_CHROOT the caller falls back to
/// `EbpfLoader::new`.
fn loader_without_btf() -> Option<EbpfLoader<'static>> {
    std::thread::spawn(|| {
        // SAFETY: unshare(CLONE_FS) gives this thread its own root and working directory; the
        // rest of the process keeps the shared ones. chroot is only reached after it worked.
        unsafe {
            if libc::unshare(libc::CLONE_FS) != 0 {
                return None;
            }
            // Any directory without `sys/kernel/btf/vmlinux` beneath it will do.
            if libc::chroot(c"/sys/kernel/btf".as_ptr()) != 0 {
                return None;
            }
        }
        Some(EbpfLoader::new())
    })
    .join()
    .ok()
    .flatten()
}

/// Failures while loading an object and its programs into the kernel.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// aya could not parse the object or create its maps.
    #[error("loading the object failed: {0}")]
    Object(#[source] Box<aya::EbpfError>),
    /// The verifier rejected a program; the rejection maps back to the source.
    #[error("{0}")]
    Verifier(Box<VerifierRejection>),
    /// A program failed to load for a reason other than the verifier.
    #[error("loading program `{program}` failed: {}", with_causes(source))]
    Program {
        program: String,
        #[source]
        source: ProgramError,
    },
    /// The program kind needs vmlinux BTF, which this kernel does not expose.
    #[error("program `{program}` needs kernel BTF (/sys/kernel/btf/vmlinux), which is missing")]
    NoBtf { program: String },
    /// The compiled object and the loaded one disagree: a bug.
    #[error("internal error (a bug in nubpf): {0}")]
    Internal(String),
}

/// An error with its causes, `outer: inner: errno text`: aya's own messages name the failing
/// call but keep the errno in their source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Failures while attaching a loaded program.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The kernel or aya refused the attachment.
    #[error("attaching `{target}` failed: {}", with_causes(source))]
    Program {
        /// The program's index in `Compiled::programs`.
        index: usize,
        target: String,
        #[source]
        source: ProgramError,
    },
    /// The probe index is out of range: a bug.
    #[error("internal error (a bug in nubpf): {0}")]
    Internal(String),
}

/// One per process: the reusable loader.
pub struct Runtime {
    loader: EbpfLoader<'static>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates the loader, without the vmlinux BTF that aya would parse for it (see
    /// `loader_without_btf`); tp_btf and fentry loads parse their own copy when first used
    /// (`vmlinux_btf`).
    pub fn new() -> Runtime {
        // Read once now, not while probes run (see `possible_cpus`).
        let _ = maps::possible_cpus();
        Runtime {
            loader: loader_without_btf().unwrap_or_default(),
        }
    }

    /// `Runtime::new` on a thread of its own, to overlap with compiling when it has to parse
    /// BTF after all.
    pub fn in_background() -> std::thread::JoinHandle<Runtime> {
        std::thread::spawn(Runtime::new)
    }

    /// Creates the maps of `compiled` and loads (verifies) every program, without attaching.
    pub fn load(&mut self, compiled: Arc<Compiled>) -> Result<LoadedModule, LoadError> {
        let mut ebpf = self
            .loader
            .load(&compiled.object)
            .map_err(|e| LoadError::Object(Box::new(e)))?;
        for program in &compiled.programs {
            load_program(&mut ebpf, program)?;
        }

        let attached = vec![false; compiled.programs.len()];
        Ok(LoadedModule {
            ebpf,
            compiled,
            attached,
        })
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

fn load_program(ebpf: &mut Ebpf, program: &CompiledProgram) -> Result<(), LoadError> {
    let name = program.name.as_str();
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| LoadError::Internal(format!("program `{name}` missing from the object")))?;
    let no_btf = || LoadError::NoBtf {
        program: name.to_string(),
    };
    let result = match &program.attach {
        Attach::Tracepoint { .. } => <&mut TracePoint>::try_from(prog).and_then(|p| p.load()),
        Attach::RawTracepoint { .. } => <&mut RawTracePoint>::try_from(prog).and_then(|p| p.load()),
        Attach::TpBtf { name: tp } => {
            let btf = vmlinux_btf().ok_or_else(no_btf)?;
            <&mut BtfTracePoint>::try_from(prog).and_then(|p| p.load(tp, btf))
        }
        Attach::Kprobe { .. } | Attach::Kretprobe { .. } => {
            <&mut KProbe>::try_from(prog).and_then(|p| p.load())
        }
        Attach::Uprobe { .. } | Attach::Uretprobe { .. } => {
            <&mut UProbe>::try_from(prog).and_then(|p| p.load())
        }
        Attach::PerfEvent { .. } | Attach::Interval { .. } => {
            <&mut PerfEvent>::try_from(prog).and_then(|p| p.load())
        }
        Attach::Fentry { function } => {
            let btf = vmlinux_btf().ok_or_else(no_btf)?;
            <&mut FEntry>::try_from(prog).and_then(|p| p.load(function, btf))
        }
        Attach::Fexit { function } => {
            let btf = vmlinux_btf().ok_or_else(no_btf)?;
            <&mut FExit>::try_from(prog).and_then(|p| p.load(function, btf))
        }
    };
    result.map_err(|source| match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => LoadError::Verifier(Box::new(VerifierRejection::new(
            program,
            io_error,
            format!("{verifier_log:?}"),
        ))),
        source => LoadError::Program {
            program: name.to_string(),
            source,
        },
    })
}

/// A loaded object: its maps exist and its programs are verified. Dropping it detaches
/// every program and frees every map.
pub struct LoadedModule {
    ebpf: Ebpf,
    compiled: Arc<Compiled>,
    attached: Vec<bool>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("programs", &self.compiled.programs.len())
            .field("attached", &self.attached)
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    pub fn is_attached(&self, program: usize) -> bool {
        self.attached.get(program).copied().unwrap_or(false)
    }

    /// Attaches every program not yet attached.
    pub fn attach_all(&mut self) -> Result<(), AttachError> {
        for i in 0..self.compiled.programs.len() {
            if !self.attached[i] {
                self.attach(i)?;
            }
        }
        Ok(())
    }

    /// Attaches program `index` (in `Compiled::programs` order).
    pub fn attach(&mut self, index: usize) -> Result<(), AttachError> {
        let compiled = self.compiled.clone();
        let program = compiled
            .programs
            .get(index)
            .ok_or_else(|| AttachError::Internal(format!("no program {index}")))?;
        let prog = self
            .ebpf
            .program_mut(&program.name)
            .ok_or_else(|| AttachError::Internal(format!("program `{}` missing", program.name)))?;
        let attach_error = |source| AttachError::Program {
            index,
            target: program.attach.describe(),
            source,
        };
        match &program.attach {
            Attach::Tracepoint { category, name } => {
                let p: &mut TracePoint = prog.try_into().map_err(attach_error)?;
                p.attach(category, name).map_err(attach_error)?;
            }
            Attach::RawTracepoint { name } => {
                let p: &mut RawTracePoint = prog.try_into().map_err(attach_error)?;
                p.attach(name).map_err(attach_error)?;
            }
            Attach::TpBtf { .. } => {
                let p: &mut BtfTracePoint = prog.try_into().map_err(attach_error)?;
                p.attach().map_err(attach_error)?;
            }
            Attach::Kprobe { function } | Attach::Kretprobe { function } => {
                let p: &mut KProbe = prog.try_into().map_err(attach_error)?;
                p.attach(function, 0).map_err(attach_error)?;
            }
            Attach::Uprobe { binary, symbol } | Attach::Uretprobe { binary, symbol } => {
                let p: &mut UProbe = prog.try_into().map_err(attach_error)?;
                p.attach(symbol.as_str(), binary, UProbeScope::AllProcesses)
                    .map_err(attach_error)?;
            }
            Attach::PerfEvent { hz } => {
                let p: &mut PerfEvent = prog.try_into().map_err(attach_error)?;
                let cpus = aya::util::online_cpus().map_err(|(_, e)| {
                    attach_error(ProgramError::SyscallError(aya::sys::SyscallError {
                        call: "online_cpus",
                        io_error: e,
                    }))
                })?;
                for cpu in cpus {
                    p.attach(
                        PerfEventConfig::Software(SoftwareEvent::CpuClock),
                        PerfEventScope::AllProcessesOneCpu { cpu },
                        SamplePolicy::Frequency(*hz),
                        false,
                    )
                    .map_err(attach_error)?;
                }
            }
            Attach::Interval { period_ns } => {
                let p: &mut PerfEvent = prog.try_into().map_err(attach_error)?;
                p.attach(
                    PerfEventConfig::Software(SoftwareEvent::CpuClock),
                    PerfEventScope::AllProcessesOneCpu { cpu: 0 },
                    SamplePolicy::Period(*period_ns),
                    false,
                )
                .map_err(attach_error)?;
            }
            Attach::Fentry { .. } => {
                let p: &mut FEntry = prog.try_into().map_err(attach_error)?;
                p.attach().map_err(attach_error)?;
            }
            Attach::Fexit { .. } => {
                let p: &mut FExit = prog.try_into().map_err(attach_error)?;
                p.attach().map_err(attach_error)?;
            }
        }
        self.attached[index] = true;
        Ok(())
    }

    /// Detaches and unloads every program, keeping the maps (and what they hold) readable.
    pub fn detach_all(&mut self) {
        for (_, prog) in self.ebpf.programs_mut() {
            use aya::programs::Program;
            // Unloading fails only for programs never loaded; nothing to undo then.
            let _ = match prog {
                Program::TracePoint(p) => p.unload(),
                Program::RawTracePoint(p) => p.unload(),
                Program::BtfTracePoint(p) => p.unload(),
                Program::KProbe(p) => p.unload(),
                Program::UProbe(p) => p.unload(),
                Program::PerfEvent(p) => p.unload(),
                Program::FEntry(p) => p.unload(),
                Program::FExit(p) => p.unload(),
                _ => Ok(()),
            };
        }
        self.attached.iter_mut().for_each(|a| *a = false);
    }

    /// Kernel statistics of program `index`: runs and run time (counted only while
    /// [`enable_stats`] is held), and the size of its translated code.
    pub fn program_stats(&self, index: usize) -> Option<ProgramStats> {
        let program = self.compiled.programs.get(index)?;
        let info = self.ebpf.program(&program.name)?.info().ok()?;
        Some(ProgramStats {
            run_count: info.run_count(),
            run_time: info.run_time(),
            xlated_insns: info.size_translated().map_or(0, |b| b / 8),
        })
    }

    /// Takes the ring buffer reader; `None` when the module emits nothing or it was taken.
    pub fn take_events(&mut self) -> Option<EventReader> {
        let map = self.ebpf.take_map(EVENTS_MAP)?;
        let ring = RingBuf::try_from(map).ok()?;
        Some(EventReader {
            ring,
            compiled: self.compiled.clone(),
        })
    }

    /// Reads every aggregation's current values, merged over CPUs.
    pub fn read_aggregations(&self) -> Result<Vec<maps::AggSnapshot>, maps::MapReadError> {
        self.compiled
            .aggregations
            .iter()
            .map(|layout| {
                let map = self
                    .ebpf
                    .map(&layout.map_name)
                    .ok_or_else(|| maps::MapReadError::Missing(layout.map_name.clone()))?;
                maps::read_aggregation(map, layout)
            })
            .collect()
    }

    /// Failed ring-buffer reservations per probe, summed over CPUs.
    pub fn read_drops(&self) -> Result<Vec<u64>, maps::MapReadError> {
        match self.ebpf.map(nubpf_ebpf::codegen::DROPS_MAP) {
            None => Ok(vec![0; self.compiled.programs.len()]),
            Some(map) => maps::read_counters(map),
        }
    }

    /// Runs raw-tracepoint program `index` once in the kernel with `args` as its arguments
    /// (`BPF_PROG_TEST_RUN`), without attaching it. Returns the program's return value.
    pub fn test_run_raw_tp(&mut self, index: usize, args: &[u64]) -> Result<u32, AttachError> {
        let program = self
            .compiled
            .programs
            .get(index)
            .ok_or_else(|| AttachError::Internal(format!("no program {index}")))?;
        let target = program.attach.describe();
        let prog = self
            .ebpf
            .program_mut(&program.name)
            .ok_or_else(|| AttachError::Internal("program missing".into()))?;
        let p: &mut RawTracePoint = prog.try_into().map_err(|source| AttachError::Program {
            index,
            target: target.clone(),
            source,
        })?;
        let mut opts = aya::programs::RawTracePointRunOptions::new();
        for (slot, v) in opts.args.iter_mut().zip(args) {
            *slot = *v;
        }
        p.test_run(opts)
            .map(|r| r.return_value)
            .map_err(|source| AttachError::Program {
                index,
                target,
                source,
            })
    }
}

/// What the kernel knows about a loaded program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramStats {
    pub run_count: u64,
    pub run_time: std::time::Duration,
    /// Instructions after the verifier's rewriting (`bpftool prog dump xlated`).
    pub xlated_insns: u32,
}

/// Turns on the kernel's per-program run statistics while the returned descriptor lives.
pub fn enable_stats() -> Option<std::os::fd::OwnedFd> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime).ok()
}

/// Reads records from the module's ring buffer and decodes them through the event layouts.
pub struct EventReader {
    ring: RingBuf<MapData>,
    compiled: Arc<Compiled>,
}

impl EventReader {
    /// Decodes every record available now and passes it to `f`; returns how many there were.
    /// Never blocks.
    pub fn drain(&mut self, mut f: impl FnMut(decode::Event)) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(decode::decode(&self.compiled.events, &item));
            n += 1;
        }
        n
    }

    /// Passes every record available now to `f` undecoded, with the layout of its event
    /// type (`None` for bytes no layout describes); returns how many there were. Never
    /// blocks. For sinks that write straight from the bytes (NDJSON).
    pub fn drain_raw(&mut self, mut f: impl FnMut(Option<(u32, &EventLayout)>, &[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(decode::event_layout(&self.compiled.events, &item), &item);
            n += 1;
        }
        n
    }

    /// The ring buffer's file descriptor, for readiness polling.
    pub fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.ring.as_raw_fd()
    }
}
