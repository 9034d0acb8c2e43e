//! Program kinds, their attach targets and the ELF section names aya recognises for them.

/// Where and how a program attaches. The target strings are what the kernel (or aya) takes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attach {
    /// A tracefs tracepoint, `category:name`; the context is the raw event record.
    Tracepoint { category: String, name: String },
    /// A raw tracepoint; the context is the tracepoint's arguments as `u64`s.
    RawTracepoint { name: String },
    /// A BTF-typed raw tracepoint; the context is the arguments as `u64`s.
    TpBtf { name: String },
    /// A kernel function entry; the context is `struct pt_regs`.
    Kprobe { function: String },
    /// A kernel function return; the context is `struct pt_regs`.
    Kretprobe { function: String },
    /// A user-space function entry in `binary` at `symbol`.
    Uprobe { binary: String, symbol: String },
    /// A user-space function return.
    Uretprobe { binary: String, symbol: String },
    /// A software perf event sampling every CPU at `hz`.
    PerfEvent { hz: u64 },
    /// A software perf event on one CPU firing every `period_ns` nanoseconds.
    Interval { period_ns: u64 },
    /// BTF-typed kernel function entry; the context is the arguments as `u64`s.
    Fentry { function: String },
    /// BTF-typed kernel function return; arguments as `u64`s followed by the return value.
    Fexit { function: String },
}

/// The broad program kind, which fixes the context layout and the section prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgKind {
    Tracepoint,
    RawTracepoint,
    TpBtf,
    Kprobe,
    Kretprobe,
    Uprobe,
    Uretprobe,
    PerfEvent,
    Fentry,
    Fexit,
}

impl ProgKind {
    /// The ELF section prefix aya maps to this kind.
    pub fn section_prefix(self) -> &'static str {
        match self {
            ProgKind::Tracepoint => "tracepoint",
            ProgKind::RawTracepoint => "raw_tp",
            ProgKind::TpBtf => "tp_btf",
            ProgKind::Kprobe => "kprobe",
            ProgKind::Kretprobe => "kretprobe",
            ProgKind::Uprobe => "uprobe",
            ProgKind::Uretprobe => "uretprobe",
            ProgKind::PerfEvent => "perf_event",
            ProgKind::Fentry => "fentry",
            ProgKind::Fexit => "fexit",
        }
    }

    /// How the program's context holds function arguments.
    pub fn context(self) -> Context {
        match self {
            ProgKind::Tracepoint => Context::TraceEvent,
            ProgKind::RawTracepoint | ProgKind::TpBtf | ProgKind::Fentry | ProgKind::Fexit => {
                Context::U64Args
            }
            ProgKind::Kprobe | ProgKind::Kretprobe | ProgKind::Uprobe | ProgKind::Uretprobe => {
                Context::PtRegs
            }
            ProgKind::PerfEvent => Context::PerfEvent,
        }
    }

    /// True when the kernel type behind this kind is `BPF_PROG_TYPE_KPROBE` (uprobes included).
    pub fn is_kprobe_type(self) -> bool {
        self.context() == Context::PtRegs
    }
}

/// The layout of a program's context (`r1` on entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    /// The tracefs event record: fields at the offsets of the event's `format` file.
    TraceEvent,
    /// An array of `u64` arguments.
    U64Args,
    /// x86-64 `struct pt_regs`.
    PtRegs,
    /// `struct bpf_perf_event_data`, which starts with `struct pt_regs`.
    PerfEvent,
}

/// Offsets into x86-64 `struct pt_regs` of the six System V argument registers
/// (rdi, rsi, rdx, rcx, r8, r9).
pub const PT_REGS_ARGS: [i16; 6] = [112, 104, 96, 88, 72, 64];
/// Offset of `ax` (the return value) in x86-64 `struct pt_regs`.
pub const PT_REGS_RC: i16 = 80;
/// Offset of `ip` in x86-64 `struct pt_regs`.
pub const PT_REGS_IP: i16 = 128;

impl Attach {
    pub fn kind(&self) -> ProgKind {
        match self {
            Attach::Tracepoint { .. } => ProgKind::Tracepoint,
            Attach::RawTracepoint { .. } => ProgKind::RawTracepoint,
            Attach::TpBtf { .. } => ProgKind::TpBtf,
            Attach::Kprobe { .. } => ProgKind::Kprobe,
            Attach::Kretprobe { .. } => ProgKind::Kretprobe,
            Attach::Uprobe { .. } => ProgKind::Uprobe,
            Attach::Uretprobe { .. } => ProgKind::Uretprobe,
            Attach::PerfEvent { .. } | Attach::Interval { .. } => ProgKind::PerfEvent,
            Attach::Fentry { .. } => ProgKind::Fentry,
            Attach::Fexit { .. } => ProgKind::Fexit,
        }
    }

    /// The ELF section name for a program attaching here. aya takes the attach target from
    /// the runtime call, so the suffix is informative; it is kept to section-safe characters.
    pub fn section_name(&self) -> String {
        let prefix = self.kind().section_prefix();
        let target = match self {
            Attach::Tracepoint { category, name } => format!("{category}/{name}"),
            Attach::RawTracepoint { name } | Attach::TpBtf { name } => name.clone(),
            Attach::Kprobe { function }
            | Attach::Kretprobe { function }
            | Attach::Fentry { function }
            | Attach::Fexit { function } => function.clone(),
            Attach::Uprobe { symbol, .. } | Attach::Uretprobe { symbol, .. } => symbol.clone(),
            Attach::PerfEvent { .. } | Attach::Interval { .. } => return prefix.to_string(),
        };
        let target: String = target
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{prefix}/{target}")
    }

    /// A short human description, e.g. `tracepoint:syscalls:sys_enter_openat`.
    pub fn describe(&self) -> String {
        match self {
            Attach::Tracepoint { category, name } => format!("tracepoint:{category}:{name}"),
            Attach::RawTracepoint { name } => format!("raw_tracepoint:{name}"),
            Attach::TpBtf { name } => format!("tp_btf:{name}"),
            Attach::Kprobe { function } => format!("kprobe:{function}"),
            Attach::Kretprobe { function } => format!("kretprobe:{function}"),
            Attach::Uprobe { binary, symbol } => format!("uprobe:{binary}:{symbol}"),
            Attach::Uretprobe { binary, symbol } => format!("uretprobe:{binary}:{symbol}"),
            Attach::PerfEvent { hz } => format!("profile:hz:{hz}"),
            Attach::Interval { period_ns } => format!("interval:{period_ns}ns"),
            Attach::Fentry { function } => format!("fentry:{function}"),
            Attach::Fexit { function } => format!("fexit:{function}"),
        }
    }
}
