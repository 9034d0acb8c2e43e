//! The probe language's commands, registered as Nushell declarations so nu-parser parses
//! probe scripts as real Nushell: probe commands (`bpf_tracepoint`, `bpf kprobe`, ...) at the
//! top level, and the statements of a probe body (`emit`, `count`, `hist`, ...).
//!
//! Only their signatures matter for parsing. Running them is the job of the runtime
//! pipeline (probe commands) or never happens (body commands compile to eBPF).

use nu_protocol::engine::{Call, Command, EngineState, Stack};
use nu_protocol::{
    Category, PipelineData, ShellError, Signature, SyntaxShape, Type,
    shell_error::generic::GenericError,
};

/// A probe command: where to attach, then the closure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Tracepoint,
    RawTracepoint,
    Kprobe,
    Kretprobe,
    Uprobe,
    Uretprobe,
    Fentry,
    Fexit,
    Profile,
    Interval,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 10] = [
        ProbeKind::Tracepoint,
        ProbeKind::RawTracepoint,
        ProbeKind::Kprobe,
        ProbeKind::Kretprobe,
        ProbeKind::Uprobe,
        ProbeKind::Uretprobe,
        ProbeKind::Fentry,
        ProbeKind::Fexit,
        ProbeKind::Profile,
        ProbeKind::Interval,
    ];

    /// The word after `bpf_` / `bpf `.
    pub fn word(self) -> &'static str {
        match self {
            ProbeKind::Tracepoint => "tracepoint",
            ProbeKind::RawTracepoint => "raw_tracepoint",
            ProbeKind::Kprobe => "kprobe",
            ProbeKind::Kretprobe => "kretprobe",
            ProbeKind::Uprobe => "uprobe",
            ProbeKind::Uretprobe => "uretprobe",
            ProbeKind::Fentry => "fentry",
            ProbeKind::Fexit => "fexit",
            ProbeKind::Profile => "profile",
            ProbeKind::Interval => "interval",
        }
    }

    fn description(self) -> &'static str {
        match self {
            ProbeKind::Tracepoint => {
                "Run a closure on every hit of a kernel tracepoint (`category:name`)."
            }
            ProbeKind::RawTracepoint => "Run a closure on every hit of a raw kernel tracepoint.",
            ProbeKind::Kprobe => "Run a closure when a kernel function is entered.",
            ProbeKind::Kretprobe => "Run a closure when a kernel function returns.",
            ProbeKind::Uprobe => "Run a closure when a function of a user-space binary is entered.",
            ProbeKind::Uretprobe => "Run a closure when a function of a user-space binary returns.",
            ProbeKind::Fentry => "Run a closure at a kernel function's entry (BTF-typed, fast).",
            ProbeKind::Fexit => "Run a closure at a kernel function's exit (BTF-typed, fast).",
            ProbeKind::Profile => "Run a closure on every CPU at a fixed frequency.",
            ProbeKind::Interval => "Run a closure once per interval.",
        }
    }

    /// The positional target parameters before the closure.
    fn targets(self) -> &'static [(&'static str, SyntaxShape, &'static str)] {
        match self {
            ProbeKind::Tracepoint => &[(
                "tracepoint",
                SyntaxShape::String,
                "`category:name`, e.g. `syscalls:sys_enter_openat`",
            )],
            ProbeKind::RawTracepoint => &[(
                "tracepoint",
                SyntaxShape::String,
                "raw tracepoint name, e.g. `sys_enter`",
            )],
            ProbeKind::Kprobe | ProbeKind::Kretprobe | ProbeKind::Fentry | ProbeKind::Fexit => {
                &[("function", SyntaxShape::String, "kernel function name")]
            }
            ProbeKind::Uprobe | ProbeKind::Uretprobe => &[
                (
                    "binary",
                    SyntaxShape::String,
                    "path of the binary or library",
                ),
                ("symbol", SyntaxShape::String, "function symbol"),
            ],
            ProbeKind::Profile => &[],
            ProbeKind::Interval => &[("every", SyntaxShape::Duration, "how often, e.g. `1sec`")],
        }
    }

    pub fn signature(self, name: &str) -> Signature {
        let mut sig = Signature::build(name)
            .input_output_types(vec![(Type::Nothing, Type::list(Type::Any))])
            .category(Category::Custom("bpf".into()));
        for (param, shape, desc) in self.targets() {
            sig = sig.required(*param, shape.clone(), *desc);
        }
        sig = sig
            .required(
                "probe",
                SyntaxShape::Closure(Some(vec![SyntaxShape::Any])),
                "the probe body, compiled to eBPF",
            )
            .named(
                "strlen",
                SyntaxShape::Int,
                "bytes kept of each string read from memory (default 128)",
                None,
            );
        if self == ProbeKind::Profile {
            sig = sig.named(
                "hz",
                SyntaxShape::Int,
                "samples per second per CPU (default 99)",
                None,
            );
        }
        sig
    }
}

/// A statement command usable inside a probe closure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyCommand {
    Emit,
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Hist,
    Lhist,
}

impl BodyCommand {
    pub const ALL: [BodyCommand; 8] = [
        BodyCommand::Emit,
        BodyCommand::Count,
        BodyCommand::Sum,
        BodyCommand::Min,
        BodyCommand::Max,
        BodyCommand::Avg,
        BodyCommand::Hist,
        BodyCommand::Lhist,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BodyCommand::Emit => "emit",
            BodyCommand::Count => "count",
            BodyCommand::Sum => "sum",
            BodyCommand::Min => "min",
            BodyCommand::Max => "max",
            BodyCommand::Avg => "avg",
            BodyCommand::Hist => "hist",
            BodyCommand::Lhist => "lhist",
        }
    }

    pub fn from_name(name: &str) -> Option<BodyCommand> {
        BodyCommand::ALL.into_iter().find(|c| c.name() == name)
    }

    fn description(self) -> &'static str {
        match self {
            BodyCommand::Emit => "Send a value or a record to user space as one row.",
            BodyCommand::Count => "Count events in the kernel, optionally per key (`--by`).",
            BodyCommand::Sum => "Sum a value in the kernel, optionally per key.",
            BodyCommand::Min => "Keep the minimum of a value in the kernel, optionally per key.",
            BodyCommand::Max => "Keep the maximum of a value in the kernel, optionally per key.",
            BodyCommand::Avg => "Average a value in the kernel, optionally per key.",
            BodyCommand::Hist => "Power-of-two histogram of a value, optionally per key.",
            BodyCommand::Lhist => "Linear histogram of a value from min to max in steps.",
        }
    }

    pub fn signature(self) -> Signature {
        let mut sig = Signature::build(self.name())
            .input_output_types(vec![(Type::Any, Type::Nothing)])
            .category(Category::Custom("bpf".into()));
        match self {
            BodyCommand::Emit => {
                return sig.optional("value", SyntaxShape::Any, "a value or a record");
            }
            BodyCommand::Count => {}
            BodyCommand::Lhist => {
                sig = sig
                    .required("value", SyntaxShape::Any, "the value to bucket")
                    .required("min", SyntaxShape::Int, "lowest bucket start")
                    .required("max", SyntaxShape::Int, "end of the last bucket")
                    .required("step", SyntaxShape::Int, "bucket width");
            }
            _ => sig = sig.required("value", SyntaxShape::Any, "the value to aggregate"),
        }
        sig.named(
            "by",
            SyntaxShape::Any,
            "key: a value or a record of values",
            Some('b'),
        )
        .named("as", SyntaxShape::String, "name of the aggregation", None)
    }
}

/// A declaration of the probe language.
#[derive(Clone)]
pub enum Decl {
    Probe {
        name: String,
        kind: ProbeKind,
    },
    Body(BodyCommand),
    /// The `bpf` parent of `bpf kprobe` and friends.
    Parent,
}

impl Command for Decl {
    fn name(&self) -> &str {
        match self {
            Decl::Probe { name, .. } => name,
            Decl::Body(c) => c.name(),
            Decl::Parent => "bpf",
        }
    }

    fn signature(&self) -> Signature {
        match self {
            Decl::Probe { name, kind } => kind.signature(name),
            Decl::Body(c) => c.signature(),
            Decl::Parent => Signature::build("bpf")
                .input_output_types(vec![(Type::Nothing, Type::String)])
                .category(Category::Custom("bpf".into())),
        }
    }

    fn description(&self) -> &str {
        match self {
            Decl::Probe { kind, .. } => kind.description(),
            Decl::Body(c) => c.description(),
            Decl::Parent => {
                "eBPF probes written as closures (see `bpf kprobe`, `bpf tracepoint`, ...)."
            }
        }
    }

    fn run(
        &self,
        _engine_state: &EngineState,
        _stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        Err(ShellError::Generic(
            GenericError::new(
                format!("`{}` runs only inside nubpf", self.name()),
                "compiled to eBPF, not evaluated",
                call.head,
            )
            .with_help("run the script with `nubpf-tui run`"),
        ))
    }
}

/// Every declaration of the language: `bpf_<kind>` and `bpf <kind>` for each probe kind, the
/// `bpf` parent, and the body commands.
pub fn all() -> Vec<Decl> {
    let mut decls = vec![Decl::Parent];
    for kind in ProbeKind::ALL {
        for name in [
            format!("bpf_{}", kind.word()),
            format!("bpf {}", kind.word()),
        ] {
            decls.push(Decl::Probe { name, kind });
        }
    }
    decls.extend(BodyCommand::ALL.map(Decl::Body));
    decls
}
