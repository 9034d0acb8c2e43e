//! Resolving a probe's target against the catalogue: does the tracepoint, kernel function or
//! symbol exist, and which fields does `$ctx` offer there.

use std::path::Path;
use std::sync::Arc;

use nubpf_ebpf::Span;
use nubpf_ebpf::program::Attach;

use super::commands::ProbeKind;
use super::diagnostic::Diagnostic;
use super::known::{self, KnownFunction};
use crate::probes::catalogue::btf::{Param, TypeId};
use crate::probes::catalogue::{Btf, Catalogue, Format, Lookup};

/// What `$ctx.<field>` can name on a probe, beyond the fields every probe has.
#[derive(Clone, Debug)]
pub enum Fields {
    /// Tracepoint record fields; `char *` fields are user strings when `user_strings`.
    Tracepoint {
        format: Arc<Format>,
        user_strings: bool,
    },
    /// BTF-typed arguments (kprobes, fentry/fexit, raw tracepoints) and, on return probes,
    /// the return type.
    Btf {
        btf: Arc<Btf>,
        params: Vec<Param>,
        ret: Option<TypeId>,
        /// The return value follows the arguments in the context (fexit), instead of
        /// sitting in `pt_regs` (kretprobe).
        ret_in_args: bool,
    },
    /// Untyped register arguments `arg0`..`arg5` (and `retval` on return probes).
    Registers { ret: bool },
    /// A well-known user-space function.
    Known {
        function: &'static KnownFunction,
        ret: bool,
    },
    /// Sampling probes: the instruction pointer only.
    Profile,
    /// Timer probes: nothing beyond the common fields.
    Nothing,
}

/// A resolved probe target.
#[derive(Clone, Debug)]
pub struct Target {
    pub attach: Attach,
    pub fields: Fields,
    /// A short name for the probe (the tracepoint, function or symbol name).
    pub name: String,
}

/// Arguments of a probe command as written.
pub struct TargetArgs<'a> {
    pub kind: ProbeKind,
    /// The target strings with their spans.
    pub strings: Vec<(String, Span)>,
    /// `bpf_interval`'s period.
    pub period_ns: Option<u64>,
    pub hz: Option<u64>,
    /// The span of the whole command head, for errors that concern the command itself.
    pub head: Span,
    pub catalogue: &'a Catalogue,
}

fn suggest<'a>(candidates: impl IntoIterator<Item = &'a str>, input: &str) -> Option<String> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    super::suggest::did_you_mean(candidates.iter().copied(), input)
}

fn unavailable(what: &str, why: String, span: Span) -> Diagnostic {
    Diagnostic::error(
        "catalogue_unavailable",
        format!("cannot check {what}: {why}"),
        span,
    )
    .with_label("not checked")
    .with_help("nubpf reads tracefs, /sys/kernel/btf/vmlinux and binaries to type probes")
}

/// Resolves the target of a probe command.
pub fn resolve(args: &TargetArgs<'_>) -> Result<Target, Diagnostic> {
    let string = |i: usize| -> Result<(&str, Span), Diagnostic> {
        args.strings
            .get(i)
            .map(|(s, sp)| (s.as_str(), *sp))
            .ok_or_else(|| Diagnostic::internal("probe target missing after parsing", args.head))
    };
    match args.kind {
        ProbeKind::Tracepoint => {
            let (text, span) = string(0)?;
            tracepoint(args.catalogue, text, span)
        }
        ProbeKind::RawTracepoint => {
            let (name, span) = string(0)?;
            raw_tracepoint(args.catalogue, name, span)
        }
        ProbeKind::Kprobe | ProbeKind::Kretprobe | ProbeKind::Fentry | ProbeKind::Fexit => {
            let (function, span) = string(0)?;
            kernel_function(args.catalogue, args.kind, function, span)
        }
        ProbeKind::Uprobe | ProbeKind::Uretprobe => {
            let (binary, bspan) = string(0)?;
            let (symbol, sspan) = string(1)?;
            uprobe(args.catalogue, args.kind, binary, bspan, symbol, sspan)
        }
        ProbeKind::Profile => {
            let hz = args.hz.unwrap_or(99);
            if hz == 0 || hz > 100_000 {
                return Err(Diagnostic::error(
                    "bad_argument",
                    format!("`--hz {hz}` is out of range"),
                    args.head,
                )
                .with_help("use a frequency from 1 to 100000"));
            }
            Ok(Target {
                attach: Attach::PerfEvent { hz },
                fields: Fields::Profile,
                name: format!("profile_{hz}hz"),
            })
        }
        ProbeKind::Interval => {
            let period_ns = args.period_ns.unwrap_or(0);
            if period_ns < 1_000_000 {
                return Err(Diagnostic::error(
                    "bad_argument",
                    "the interval must be at least 1ms",
                    args.strings.first().map_or(args.head, |s| s.1),
                )
                .with_help("e.g. `bpf_interval 1sec {|| ... }`"));
            }
            Ok(Target {
                attach: Attach::Interval { period_ns },
                fields: Fields::Nothing,
                name: format!("interval_{}ms", period_ns / 1_000_000),
            })
        }
    }
}

fn tracepoint(catalogue: &Catalogue, text: &str, span: Span) -> Result<Target, Diagnostic> {
    let Some((category, name)) = text.split_once(':') else {
        let mut d = Diagnostic::error(
            "bad_tracepoint",
            format!("`{text}` is not of the form `category:name`"),
            span,
        )
        .with_label("expected `category:name`");
        if let Ok(all) = catalogue.tracepoint_names() {
            let names = all.iter().filter_map(|t| t.split_once(':').map(|(_, n)| n));
            if let Some(s) = suggest(names, text) {
                let full = all.iter().find(|t| t.ends_with(&format!(":{s}"))).cloned();
                d = d.with_help(format!("did you mean `{}`?", full.unwrap_or(s)));
            }
        }
        return Err(d);
    };
    match catalogue.tracepoint(category, name) {
        Lookup::Found(format) => Ok(Target {
            attach: Attach::Tracepoint {
                category: category.into(),
                name: name.into(),
            },
            fields: Fields::Tracepoint {
                format,
                user_strings: category == "syscalls",
            },
            name: name.into(),
        }),
        Lookup::Missing => {
            let mut d = Diagnostic::error(
                "unknown_tracepoint",
                format!("there is no tracepoint `{text}` on this kernel"),
                span,
            )
            .with_label("unknown tracepoint");
            if let Ok(all) = catalogue.tracepoint_names()
                && let Some(s) = suggest(all.iter().map(String::as_str), text)
            {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            Err(d.with_help("`nubpf-tui list tracepoints` lists them all"))
        }
        Lookup::Unavailable(why) => Err(unavailable("the tracepoint", why, span)),
    }
}

fn raw_tracepoint(catalogue: &Catalogue, name: &str, span: Span) -> Result<Target, Diagnostic> {
    let btf = catalogue
        .btf()
        .map_err(|why| unavailable("the raw tracepoint", why, span))?;
    let Some(params) = btf.raw_tracepoint(name) else {
        let mut d = Diagnostic::error(
            "unknown_tracepoint",
            format!("there is no raw tracepoint `{name}` on this kernel"),
            span,
        )
        .with_label("unknown raw tracepoint");
        if let Some(s) = suggest(btf.raw_tracepoint_names(), name) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        return Err(d);
    };
    Ok(Target {
        attach: Attach::RawTracepoint { name: name.into() },
        fields: Fields::Btf {
            btf,
            params,
            ret: None,
            ret_in_args: false,
        },
        name: name.into(),
    })
}

fn kernel_function(
    catalogue: &Catalogue,
    kind: ProbeKind,
    function: &str,
    span: Span,
) -> Result<Target, Diagnostic> {
    let btf = catalogue
        .btf()
        .map_err(|why| unavailable("the kernel function", why, span))?;
    let Some((params, ret)) = btf.function(function) else {
        let mut d = Diagnostic::error(
            "unknown_function",
            format!("there is no kernel function `{function}` in this kernel's BTF"),
            span,
        )
        .with_label("unknown kernel function");
        if let Some(s) = suggest(btf.function_names(), function) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        return Err(d.with_help("`nubpf-tui list kfuncs` lists them"));
    };
    let returns = matches!(kind, ProbeKind::Kretprobe | ProbeKind::Fexit);
    let attach = match kind {
        ProbeKind::Kprobe => Attach::Kprobe {
            function: function.into(),
        },
        ProbeKind::Kretprobe => Attach::Kretprobe {
            function: function.into(),
        },
        ProbeKind::Fentry => Attach::Fentry {
            function: function.into(),
        },
        _ => Attach::Fexit {
            function: function.into(),
        },
    };
    Ok(Target {
        attach,
        fields: Fields::Btf {
            btf,
            params,
            ret: returns.then_some(ret),
            ret_in_args: kind == ProbeKind::Fexit,
        },
        name: function.into(),
    })
}

fn uprobe(
    catalogue: &Catalogue,
    kind: ProbeKind,
    binary: &str,
    binary_span: Span,
    symbol: &str,
    symbol_span: Span,
) -> Result<Target, Diagnostic> {
    let path = Path::new(binary);
    if !path.is_absolute() {
        return Err(Diagnostic::error(
            "bad_binary",
            format!("`{binary}` is not an absolute path"),
            binary_span,
        )
        .with_label("needs an absolute path")
        .with_help("give the binary's full path, e.g. `/bin/bash`"));
    }
    let symbols = catalogue.elf_symbols(path).map_err(|why| {
        Diagnostic::error("bad_binary", format!("cannot read `{binary}`"), binary_span)
            .with_label("not readable")
            .with_help(why)
    })?;
    if !symbols.contains(symbol) {
        let mut d = Diagnostic::error(
            "unknown_symbol",
            format!("`{binary}` has no function `{symbol}`"),
            symbol_span,
        )
        .with_label("unknown symbol");
        if let Some(s) = suggest(symbols.functions.iter().map(String::as_str), symbol) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        return Err(d.with_help(format!("`nubpf-tui list uprobes {binary}` lists them")));
    }
    let ret = kind == ProbeKind::Uretprobe;
    let fields = match known::lookup(binary, symbol) {
        Some(function) => Fields::Known { function, ret },
        None => Fields::Registers { ret },
    };
    let attach = if ret {
        Attach::Uretprobe {
            binary: binary.into(),
            symbol: symbol.into(),
        }
    } else {
        Attach::Uprobe {
            binary: binary.into(),
            symbol: symbol.into(),
        }
    };
    Ok(Target {
        attach,
        fields,
        name: symbol.into(),
    })
}
