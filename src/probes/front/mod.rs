//! The front end: probe scripts in Nushell syntax → probe IR → object, with diagnostics on
//! spans. [`compile`] is the entry point; it does no IO except through the [`Catalogue`] it
//! is handed and never panics on any input.

pub mod commands;
pub mod complete;
pub mod diagnostic;
pub mod engine;
pub mod known;
pub mod lower;
pub mod suggest;
pub mod target;

use std::sync::Arc;

use nu_protocol::ast::{Argument, Call, Expr as NuExpr, Expression, Pipeline};
use nu_protocol::engine::StateWorkingSet;
use nubpf_ebpf::Span;
use nubpf_ebpf::ir::{Module, Probe};
use nubpf_ebpf::program::Attach;

use crate::probes::catalogue::Catalogue;
use commands::{Decl, ProbeKind};
pub use diagnostic::{Diagnostic, Severity};
use lower::{ProbeLowerer, Spans};
use target::{Fields, Target, TargetArgs};

/// Default capacity of strings read from memory, NUL included.
pub const DEFAULT_STRLEN: u16 = 128;

/// One probe of a compiled script.
#[derive(Clone, Debug)]
pub struct ScriptProbe {
    /// Unique within the script (`sys_enter_openat`, `readline_2`).
    pub name: String,
    pub kind: ProbeKind,
    pub attach: Attach,
    /// The whole pipeline, probe command included.
    pub span: Span,
    /// The user-space part after the probe command (`where pid > 1000 | ...`), if any.
    pub pipeline: Option<(String, Span)>,
    /// What `$ctx.` offers on this probe.
    pub fields: Vec<String>,
    /// Why the probe attaches elsewhere than written (e.g. at return), for the user.
    pub note: Option<String>,
    /// The number of BTF-typed arguments (kernel functions), where the return value of an
    /// fexit program sits.
    pub btf_args: Option<usize>,
}

/// A compiled script.
#[derive(Clone, Debug)]
pub struct Script {
    pub source: String,
    pub probes: Vec<ScriptProbe>,
    pub module: Module,
    pub compiled: Arc<nubpf_ebpf::Compiled>,
}

impl Script {
    /// Whether some probe attaches to a kernel function through kprobes.
    pub fn uses_kprobes(&self) -> bool {
        self.probes
            .iter()
            .any(|p| matches!(p.attach, Attach::Kprobe { .. } | Attach::Kretprobe { .. }))
    }

    /// Switches `bpf_kprobe` / `bpf_kretprobe` probes to fentry / fexit (cheaper, and the way
    /// on kernels without kprobes). Both see the same `$ctx` fields: arguments are read by
    /// position either way, and a return value moves from `pt_regs` to the slot after the
    /// arguments. Recompiles; `Ok(false)` when nothing changed.
    pub fn use_fentry(&mut self) -> Result<bool, Diagnostic> {
        self.use_fentry_except(&[])
    }

    /// [`Script::use_fentry`] for every probe but those in `keep`, which stay kprobes (a
    /// function that refuses fentry).
    pub fn use_fentry_except(&mut self, keep: &[usize]) -> Result<bool, Diagnostic> {
        use nubpf_ebpf::ir::{CtxRead, Expr, ExprKind, Stmt, StmtKind};
        fn rewrite_expr(e: &mut Expr, ret: u8) {
            if let ExprKind::Ctx(CtxRead::RetVal) = e.kind {
                e.kind = ExprKind::Ctx(CtxRead::Arg(ret));
            }
            match &mut e.kind {
                ExprKind::ReadInt { addr, .. } | ExprKind::ReadStr { addr, .. } => {
                    rewrite_expr(addr, ret)
                }
                ExprKind::Unary(_, a) | ExprKind::StrMatch(_, a, _) | ExprKind::Cast(a) => {
                    rewrite_expr(a, ret)
                }
                ExprKind::Binary(_, a, b)
                | ExprKind::Cmp(_, a, b)
                | ExprKind::And(a, b)
                | ExprKind::Or(a, b) => {
                    rewrite_expr(a, ret);
                    rewrite_expr(b, ret);
                }
                _ => {}
            }
        }
        fn rewrite(body: &mut [Stmt], ret: u8) {
            for s in body {
                match &mut s.kind {
                    StmtKind::Let { value, .. } | StmtKind::Assign { value, .. } => {
                        rewrite_expr(value, ret)
                    }
                    StmtKind::If {
                        cond,
                        then,
                        otherwise,
                    } => {
                        rewrite_expr(cond, ret);
                        rewrite(then, ret);
                        rewrite(otherwise, ret);
                    }
                    StmtKind::Emit { fields } => {
                        fields.iter_mut().for_each(|(_, e)| rewrite_expr(e, ret))
                    }
                    StmtKind::Aggregate { key, value, .. } => {
                        key.iter_mut().for_each(|e| rewrite_expr(e, ret));
                        if let Some(v) = value {
                            rewrite_expr(v, ret);
                        }
                    }
                    StmtKind::Return => {}
                }
            }
        }
        let mut changed = false;
        for (i, (info, probe)) in self
            .probes
            .iter_mut()
            .zip(self.module.probes.iter_mut())
            .enumerate()
        {
            if keep.contains(&i) {
                continue;
            }
            let new = match &probe.attach {
                Attach::Kprobe { function } => Attach::Fentry {
                    function: function.clone(),
                },
                Attach::Kretprobe { function } => {
                    rewrite(&mut probe.body, info.btf_args.unwrap_or(0) as u8);
                    Attach::Fexit {
                        function: function.clone(),
                    }
                }
                _ => continue,
            };
            probe.attach = new.clone();
            info.attach = new;
            changed = true;
        }
        if changed {
            self.compiled = Arc::new(
                nubpf_ebpf::compile(&self.module)
                    .map_err(|e| Diagnostic::error("codegen", e.to_string(), e.span))?,
            );
        }
        Ok(changed)
    }

    /// Probe `index` compiled on its own with its aggregations, to attach, replace and
    /// detach it without touching the others (the workbench does).
    pub fn probe_object(&self, index: usize) -> Result<Arc<nubpf_ebpf::Compiled>, Diagnostic> {
        use nubpf_ebpf::ir::{AggId, Stmt, StmtKind};
        let span = self.probes.get(index).map(|p| p.span).unwrap_or_default();
        let probe = self
            .module
            .probes
            .get(index)
            .cloned()
            .ok_or_else(|| Diagnostic::internal(format!("no probe {index}"), span))?;
        let mut aggregations = Vec::new();
        let mut remap = std::collections::HashMap::new();
        for (i, a) in self.module.aggregations.iter().enumerate() {
            if a.probe == index {
                remap.insert(i as u32, aggregations.len() as u32);
                let mut a = a.clone();
                a.probe = 0;
                aggregations.push(a);
            }
        }
        fn renumber(body: &mut [Stmt], remap: &std::collections::HashMap<u32, u32>) {
            for s in body {
                match &mut s.kind {
                    StmtKind::Aggregate { agg, .. } => {
                        if let Some(new) = remap.get(&agg.0) {
                            *agg = AggId(*new);
                        }
                    }
                    StmtKind::If {
                        then, otherwise, ..
                    } => {
                        renumber(then, remap);
                        renumber(otherwise, remap);
                    }
                    _ => {}
                }
            }
        }
        let mut probe = probe;
        renumber(&mut probe.body, &remap);
        let module = Module {
            probes: vec![probe],
            aggregations,
            options: self.module.options,
        };
        nubpf_ebpf::compile(&module)
            .map(Arc::new)
            .map_err(|e| Diagnostic::error("codegen", e.to_string(), e.span))
    }

    /// Sizes the ring buffer every probe emits into. Recompiles the object when it changes.
    pub fn set_ring_buffer_bytes(&mut self, bytes: u32) -> Result<(), Diagnostic> {
        if self.module.options.ringbuf_bytes == bytes {
            return Ok(());
        }
        self.module.options.ringbuf_bytes = bytes;
        let compiled = nubpf_ebpf::compile(&self.module)
            .map_err(|e| Diagnostic::error("codegen", e.to_string(), e.span))?;
        self.compiled = Arc::new(compiled);
        Ok(())
    }

    /// Restricts every probe to process `pid`: each body starts with
    /// `if $ctx.pid != pid { return }`. Recompiles the object.
    pub fn restrict_to_pid(&mut self, pid: u32) -> Result<(), Diagnostic> {
        use nubpf_ebpf::ir::{Builtin, CmpOp, Expr, ExprKind, IntTy, Stmt, StmtKind, Ty};
        for probe in &mut self.module.probes {
            let span = probe.span;
            let current = Expr::new(ExprKind::Builtin(Builtin::Pid), Ty::Int(IntTy::U32), span);
            let wanted = Expr::int(pid as i64, IntTy::U32, span);
            let other = Expr::new(
                ExprKind::Cmp(CmpOp::Ne, Box::new(current), Box::new(wanted)),
                Ty::Bool,
                span,
            );
            probe.body.insert(
                0,
                Stmt {
                    kind: StmtKind::If {
                        cond: other,
                        then: vec![Stmt {
                            kind: StmtKind::Return,
                            span,
                        }],
                        otherwise: vec![],
                    },
                    span,
                },
            );
        }
        let compiled = nubpf_ebpf::compile(&self.module)
            .map_err(|e| Diagnostic::error("codegen", e.to_string(), e.span))?;
        self.compiled = Arc::new(compiled);
        Ok(())
    }
}

/// Compiles a probe script. Returns the compiled script when there are no errors (warnings
/// may still be present), and every diagnostic found.
pub fn compile(source: &str, catalogue: &Catalogue) -> (Option<Script>, Vec<Diagnostic>) {
    // Parsing and lowering must not take the process down on some input nobody foresaw:
    // a panic becomes an internal-error diagnostic.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compile_inner(source, catalogue)
    })) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            (
                None,
                vec![Diagnostic::internal(
                    format!("the compiler panicked: {what}"),
                    Span::new(0, source.len().min(u32::MAX as usize) as u32),
                )],
            )
        }
    }
}

fn compile_inner(source: &str, catalogue: &Catalogue) -> (Option<Script>, Vec<Diagnostic>) {
    let state = engine::engine_state();
    let mut ws = StateWorkingSet::new(state);
    let base = ws.next_span_start();
    let spans = Spans {
        base,
        len: source.len(),
    };
    let block = nu_parser::parse(&mut ws, Some("probe.nu"), source.as_bytes(), false);
    let mut diags = Vec::new();
    parse_diagnostics(&ws, spans, &mut diags);
    // A pipeline nu could not parse is not lowered: its garbage would only repeat nu's
    // error in other words.
    let parse_spans: Vec<Span> = diags.iter().map(|d| d.span).collect();

    let mut module = Module::default();
    let mut probes = Vec::new();
    for pipeline in &block.pipelines {
        let whole = pipeline
            .elements
            .iter()
            .map(|e| spans.of(e.expr.span))
            .reduce(Span::to);
        if let Some(whole) = whole
            && parse_spans
                .iter()
                .any(|s| s.start <= whole.end && s.end >= whole.start)
        {
            continue;
        }
        if let Some((probe, info)) = probe_pipeline(
            &ws,
            spans,
            source,
            pipeline,
            catalogue,
            &mut module,
            &probes,
            &mut diags,
        ) {
            module.probes.push(probe);
            probes.push(info);
        }
    }
    if !parse_spans.is_empty() {
        // After a parse error the AST may hold shapes nu never produces otherwise; what
        // lowering calls internal there is a consequence of that error, not a bug.
        diags.retain(|d| d.code != "nubpf::internal");
    }
    if probes.is_empty() && diags.is_empty() {
        diags.push(
            Diagnostic::error("no_probes", "the script has no probes", Span::new(0, 0)).with_help(
                "e.g. `bpf_tracepoint \"syscalls:sys_enter_openat\" {|e| count --by $e.comm }`",
            ),
        );
    }
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    match nubpf_ebpf::compile(&module) {
        Ok(compiled) => (
            Some(Script {
                source: source.to_string(),
                probes,
                module,
                compiled: Arc::new(compiled),
            }),
            diags,
        ),
        Err(e) => {
            let d = match &e.kind {
                nubpf_ebpf::CodegenErrorKind::Internal(what) => Diagnostic::internal(what, e.span),
                _ => Diagnostic::error("codegen", e.to_string(), e.span).with_label("here"),
            };
            diags.push(d);
            (None, diags)
        }
    }
}

/// nu's parse errors, minus the "external command not found" that the seed's `emit($x)`
/// spelling produces (lowering handles that shape itself).
fn parse_diagnostics(ws: &StateWorkingSet, spans: Spans, diags: &mut Vec<Diagnostic>) {
    for err in &ws.parse_errors {
        let span = miette::Diagnostic::labels(err)
            .and_then(|mut l| l.next())
            .map(|l| Span::new(l.offset() as u32, (l.offset() + l.len()) as u32))
            .map(|s| spans.of(nu_protocol::Span::new(s.start as usize, s.end as usize)))
            .unwrap_or_default();
        let mut d = Diagnostic::error("parse", err.to_string(), span);
        if let Some(label) = miette::Diagnostic::labels(err)
            .and_then(|mut l| l.next())
            .and_then(|l| l.label().map(str::to_string))
        {
            d = d.with_label(label);
        }
        if let Some(help) = miette::Diagnostic::help(err) {
            d = d.with_help(help.to_string());
        }
        // nu sometimes reports one problem twice with different help: keep the first.
        if !diags
            .iter()
            .any(|e| e.message == d.message && e.span == d.span)
        {
            diags.push(d);
        }
    }
    for err in &ws.compile_errors {
        if matches!(err, nu_protocol::CompileError::RunExternalNotFound { .. }) {
            continue;
        }
        let span = miette::Diagnostic::labels(err)
            .and_then(|mut l| l.next())
            .map(|l| spans.of(nu_protocol::Span::new(l.offset(), l.offset() + l.len())))
            .unwrap_or_default();
        diags.push(Diagnostic::error("parse", err.to_string(), span));
    }
}

fn literal_string(e: &Expression) -> Option<String> {
    match &e.expr {
        NuExpr::String(s) | NuExpr::RawString(s) => Some(s.clone()),
        NuExpr::GlobPattern(s, _) | NuExpr::Filepath(s, _) => Some(s.clone()),
        NuExpr::FullCellPath(p) if p.tail.is_empty() => literal_string(&p.head),
        _ => None,
    }
}

/// One top-level pipeline: a probe command, then optionally a user-space pipeline.
#[allow(clippy::too_many_arguments)]
fn probe_pipeline(
    ws: &StateWorkingSet,
    spans: Spans,
    source: &str,
    pipeline: &Pipeline,
    catalogue: &Catalogue,
    module: &mut Module,
    earlier: &[ScriptProbe],
    diags: &mut Vec<Diagnostic>,
) -> Option<(Probe, ScriptProbe)> {
    let first = pipeline.elements.first()?;
    let span_all = spans.of(pipeline
        .elements
        .iter()
        .map(|e| e.expr.span)
        .reduce(|a, b| a.merge(b))
        .unwrap_or(first.expr.span));
    let call = match &first.expr.expr {
        NuExpr::Call(call) => call,
        NuExpr::Garbage => return None,
        _ => {
            diags.push(top_level_error(spans.of(first.expr.span)));
            return None;
        }
    };
    let decl = ws.get_decl(call.decl_id);
    let Some(Decl::Probe { kind, .. }) = (decl as &dyn std::any::Any).downcast_ref::<Decl>() else {
        diags.push(top_level_error(spans.of(first.expr.span)));
        return None;
    };
    let kind = *kind;
    let pipeline_text = pipeline_text(source, spans, pipeline);

    let parts = call_parts(spans, call, kind, diags)?;
    let target = match target::resolve(&TargetArgs {
        kind,
        strings: parts.strings,
        period_ns: parts.period_ns,
        hz: parts.hz,
        head: spans.of(call.head),
        catalogue,
    }) {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let Target {
        mut attach,
        fields,
        name,
    } = target;
    let name = unique_name(&name, earlier);
    let block = ws.get_block(parts.closure).clone();
    let ctx_var = block
        .signature
        .required_positional
        .first()
        .and_then(|p| p.var_id);
    if block.signature.required_positional.len() > 1 {
        diags.push(
            Diagnostic::error(
                "closure_params",
                "a probe closure takes one parameter, the context",
                spans.of(parts.closure_span),
            )
            .with_help("write it as `{|ctx| ... }`"),
        );
        return None;
    }
    let probe_index = module.probes.len();
    let errors_before = diags.len();
    let mut lowerer = ProbeLowerer::new(
        ws,
        spans,
        diags,
        &mut module.aggregations,
        probe_index,
        ctx_var,
        &fields,
        attach.describe(),
        parts.strlen,
    );
    let body = lowerer.block(&block);
    let (entry_use, return_use, locals) = (
        lowerer.entry_use,
        lowerer.return_use,
        std::mem::take(&mut lowerer.locals),
    );
    let mut note = None;
    if let (
        Fields::Known {
            function,
            ret: false,
        },
        Some(ret_span),
    ) = (&fields, return_use)
    {
        if let Some(entry_span) = entry_use {
            diags.push(
                Diagnostic::error(
                    "entry_and_return",
                    format!("this probe reads both arguments and the result of `{}`", function.symbol),
                    ret_span,
                )
                .with_label("known only at return")
                .with_help(format!(
                    "split it: a `bpf_uprobe` for the arguments (like the one at {}..{}) and a `bpf_uretprobe` for the result",
                    entry_span.start, entry_span.end
                )),
            );
        } else if let Attach::Uprobe { binary, symbol } = &attach {
            note = Some(format!(
                "attached at the return of `{symbol}`: the fields used are known only then"
            ));
            attach = Attach::Uretprobe {
                binary: binary.clone(),
                symbol: symbol.clone(),
            };
        }
    }
    if diags.len() > errors_before && diags[errors_before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let probe = Probe {
        name: name.clone(),
        attach: attach.clone(),
        locals,
        body,
        span: span_all,
    };
    let info = ScriptProbe {
        name,
        kind,
        attach,
        span: span_all,
        pipeline: pipeline_text,
        fields: lower::field_names(&fields),
        note,
        btf_args: match &fields {
            Fields::Btf { params, .. } => Some(params.len()),
            _ => None,
        },
    };
    Some((probe, info))
}

/// The user-space part (`| where ...`) of every top-level probe pipeline, in order, found
/// by parsing alone (no catalogue): what a replay needs to re-run edited pipelines.
pub fn pipeline_parts(source: &str) -> Vec<Option<(String, Span)>> {
    let state = engine::engine_state();
    let mut ws = StateWorkingSet::new(state);
    let spans = Spans {
        base: ws.next_span_start(),
        len: source.len(),
    };
    let block = nu_parser::parse(&mut ws, Some("probe.nu"), source.as_bytes(), false);
    block
        .pipelines
        .iter()
        .filter(|p| {
            p.elements.first().is_some_and(|e| match &e.expr.expr {
                NuExpr::Call(call) => matches!(
                    (ws.get_decl(call.decl_id) as &dyn std::any::Any).downcast_ref::<Decl>(),
                    Some(Decl::Probe { .. })
                ),
                _ => false,
            })
        })
        .map(|p| pipeline_text(source, spans, p))
        .collect()
}

/// The text and span of a pipeline's elements after the first.
fn pipeline_text(source: &str, spans: Spans, pipeline: &Pipeline) -> Option<(String, Span)> {
    let second = pipeline.elements.get(1)?;
    let start = second.expr.span.start;
    let end = pipeline.elements.last().map_or(start, |e| e.expr.span.end);
    let span = spans.of(nu_protocol::Span::new(start, end));
    let text = source
        .get(span.start as usize..span.end as usize)
        .unwrap_or("")
        .trim()
        .to_string();
    Some((text, span))
}

fn top_level_error(span: Span) -> Diagnostic {
    Diagnostic::error(
        "not_a_probe",
        "only probe commands can stand at the top level of a probe script",
        span,
    )
    .with_label("not a probe")
    .with_help(
        "start each pipeline with a probe: `bpf_tracepoint`, `bpf_kprobe`, `bpf_kretprobe`, \
         `bpf_uprobe`, `bpf_uretprobe`, `bpf_raw_tracepoint`, `bpf_fentry`, `bpf_fexit`, \
         `bpf_profile` or `bpf_interval` (also spelled `bpf kprobe`, ...)",
    )
}

fn unique_name(name: &str, earlier: &[ScriptProbe]) -> String {
    let mut candidate = name.to_string();
    let mut n = 2;
    while earlier.iter().any(|p| p.name == candidate) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    candidate
}

struct CallParts {
    strings: Vec<(String, Span)>,
    closure: nu_protocol::BlockId,
    closure_span: nu_protocol::Span,
    strlen: u16,
    hz: Option<u64>,
    period_ns: Option<u64>,
}

/// The arguments of a probe command, checked to be literals.
fn call_parts(
    spans: Spans,
    call: &Call,
    kind: ProbeKind,
    diags: &mut Vec<Diagnostic>,
) -> Option<CallParts> {
    let mut strings = Vec::new();
    let mut closure = None;
    let mut strlen = DEFAULT_STRLEN;
    let mut hz = None;
    let mut period_ns = None;
    let mut ok = true;
    for arg in &call.arguments {
        match arg {
            Argument::Positional(e) => {
                match &e.expr {
                    NuExpr::Closure(id) => closure = Some((*id, e.span)),
                    NuExpr::ValueWithUnit(v) if kind == ProbeKind::Interval => {
                        if let NuExpr::Int(n) = v.expr.expr
                            && let Ok(nu_protocol::Value::Duration { val, .. }) =
                                v.unit.item.build_value(n, e.span)
                        {
                            period_ns = u64::try_from(val).ok();
                        }
                        strings.push((String::new(), spans.of(e.span)));
                    }
                    NuExpr::Garbage => ok = false,
                    _ => match literal_string(e) {
                        Some(s) => strings.push((s, spans.of(e.span))),
                        None => {
                            diags.push(
                            Diagnostic::error(
                                "not_literal",
                                "probe targets must be literal strings",
                                spans.of(e.span),
                            )
                            .with_label("not a literal")
                            .with_help("the target is resolved when the script compiles, before it runs"),
                        );
                            ok = false;
                        }
                    },
                }
            }
            Argument::Named((flag, _, value)) => {
                let number = value.as_ref().and_then(|v| match v.expr {
                    NuExpr::Int(n) => Some((n, v.span)),
                    _ => None,
                });
                match (flag.item.as_str(), number) {
                    ("strlen", Some((n, s))) => match u16::try_from(n) {
                        Ok(n) if (2..=4096).contains(&n) => strlen = n,
                        _ => {
                            diags.push(
                                Diagnostic::error(
                                    "bad_argument",
                                    "`--strlen` must be from 2 to 4096",
                                    spans.of(s),
                                )
                                .with_label("out of range"),
                            );
                            ok = false;
                        }
                    },
                    ("hz", Some((n, _))) => hz = u64::try_from(n).ok().or(Some(0)),
                    (name, _) => {
                        diags.push(
                            Diagnostic::error(
                                "bad_argument",
                                format!("`--{name}` needs an integer literal"),
                                spans.of(flag.span),
                            )
                            .with_label("here"),
                        );
                        ok = false;
                    }
                }
            }
            Argument::Unknown(e) | Argument::Spread(e) => {
                diags.push(
                    Diagnostic::error("bad_argument", "unexpected argument", spans.of(e.span))
                        .with_label("unexpected"),
                );
                ok = false;
            }
        }
    }
    let Some((closure, closure_span)) = closure else {
        if ok {
            diags.push(
                Diagnostic::error(
                    "missing_closure",
                    "the probe has no closure",
                    spans.of(call.head),
                )
                .with_help("e.g. `bpf_tracepoint \"syscalls:sys_enter_openat\" {|e| count }`"),
            );
        }
        return None;
    };
    ok.then_some(CallParts {
        strings,
        closure,
        closure_span,
        strlen,
        hz,
        period_ns,
    })
}
