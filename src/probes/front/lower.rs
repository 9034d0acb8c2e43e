//! Lowering: the nu-parser AST of a probe closure → the typed probe IR.
//!
//! Every construct of the probe language is recognised here, types are checked, and
//! anything outside the language gets a diagnostic on the exact sub-expression saying what
//! works instead. Lowering never panics on user input: unknown shapes become diagnostics.

use std::collections::HashMap;

use nu_protocol::ast::{
    Argument, Assignment, Bits, Block, Boolean, Call, Comparison, Expr as NuExpr, Expression,
    ListItem, Math, Operator, PathMember, RecordItem,
};
use nu_protocol::engine::StateWorkingSet;
use nu_protocol::{Value, VarId};
use nubpf_ebpf::Span;
use nubpf_ebpf::ir::{
    AddrSpace, AggDecl, AggId, AggKind, BinOp, Builtin, CmpOp, CtxRead, Expr, ExprKind, IntTy,
    LocalId, Stmt, StmtKind, StrOp, Ty, UnOp,
};

use super::commands::{BodyCommand, Decl};
use super::diagnostic::Diagnostic;
use super::known::KnownValue;
use super::target::Fields;
use crate::probes::catalogue::btf::{Btf, Resolved, TypeId};
use crate::probes::catalogue::{Field, FieldKind, tracefs};

/// Lowering either succeeds or has already pushed its diagnostic.
pub(super) type L<T> = Option<T>;

/// The fields every probe offers, whatever it attaches to.
pub const COMMON_FIELDS: [&str; 8] = ["pid", "tid", "uid", "gid", "comm", "ts", "cpu", "probe"];

/// Converts nu's global spans into offsets in the script.
#[derive(Clone, Copy)]
pub(super) struct Spans {
    pub base: usize,
    pub len: usize,
}

impl Spans {
    pub fn of(&self, s: nu_protocol::Span) -> Span {
        let clamp = |v: usize| (v.saturating_sub(self.base)).min(self.len) as u32;
        Span::new(clamp(s.start), clamp(s.end))
    }
}

/// State of lowering one probe.
pub(super) struct ProbeLowerer<'a, 'w> {
    pub ws: &'a StateWorkingSet<'w>,
    pub spans: Spans,
    pub diags: &'a mut Vec<Diagnostic>,
    /// Aggregations of the whole module (several probes add to it).
    pub aggregations: &'a mut Vec<AggDecl>,
    pub probe_index: usize,
    /// The closure's parameter (`$ctx`), if it has one.
    pub ctx_var: Option<VarId>,
    pub fields: &'a Fields,
    /// The probe's description, the value of `$ctx.probe`.
    pub probe_name: String,
    /// Capacity of strings read from memory (including the NUL).
    pub strlen: u16,
    pub locals: Vec<Ty>,
    vars: HashMap<VarId, Var>,
    /// The first use of an entry-only and a return-only field of a well-known function.
    pub entry_use: Option<Span>,
    pub return_use: Option<Span>,
}

#[derive(Clone, Copy)]
struct Var {
    local: LocalId,
    ty: Ty,
    mutable: bool,
}

/// What a key or emitted value is called when it has no name of its own.
fn column_name(ws: &StateWorkingSet, e: &Expression) -> Option<String> {
    match &e.expr {
        NuExpr::FullCellPath(path) => match path.tail.last() {
            Some(PathMember::String { val, .. }) => Some(val.clone()),
            _ => column_name(ws, &path.head),
        },
        // `emit ($ctx.pid)` names its column like `emit $ctx.pid` and `emit($ctx.pid)`.
        NuExpr::Subexpression(block) => {
            let block = ws.get_block(*block);
            match block.pipelines.as_slice() {
                [pipeline] => match pipeline.elements.as_slice() {
                    [element] => column_name(ws, &element.expr),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

fn int_ty(ty: Ty) -> Option<IntTy> {
    match ty {
        Ty::Int(i) => Some(i),
        _ => None,
    }
}

impl<'a, 'w> ProbeLowerer<'a, 'w> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ws: &'a StateWorkingSet<'w>,
        spans: Spans,
        diags: &'a mut Vec<Diagnostic>,
        aggregations: &'a mut Vec<AggDecl>,
        probe_index: usize,
        ctx_var: Option<VarId>,
        fields: &'a Fields,
        probe_name: String,
        strlen: u16,
    ) -> Self {
        ProbeLowerer {
            ws,
            spans,
            diags,
            aggregations,
            probe_index,
            ctx_var,
            fields,
            probe_name,
            strlen,
            locals: Vec::new(),
            vars: HashMap::new(),
            entry_use: None,
            return_use: None,
        }
    }

    fn sp(&self, s: nu_protocol::Span) -> Span {
        self.spans.of(s)
    }

    fn error<T>(&mut self, d: Diagnostic) -> L<T> {
        self.diags.push(d);
        None
    }

    fn unsupported(&mut self, what: &str, span: nu_protocol::Span, help: &str) {
        let d = Diagnostic::error(
            "unsupported",
            format!("{what} is not supported inside a probe"),
            self.sp(span),
        )
        .with_label("not supported in eBPF")
        .with_help(help.to_string());
        self.diags.push(d);
    }

    // ---- statements ---------------------------------------------------------------------

    /// Lowers a block's statements. Every statement is tried even after an error, so one
    /// compile reports every problem.
    pub fn block(&mut self, block: &Block) -> Vec<Stmt> {
        let mut out = Vec::new();
        for pipeline in &block.pipelines {
            let Some(first) = pipeline.elements.first() else {
                continue;
            };
            if let Some(pipe) = pipeline.elements.get(1) {
                let span = pipe.pipe.unwrap_or(pipe.expr.span);
                self.unsupported(
                    "a pipeline",
                    span,
                    "filter inside the probe with `if`, and pipe the probe's output instead: \
                     `bpf_... {...} | where ...`",
                );
                continue;
            }
            if let Some(stmts) = self.stmt(&first.expr) {
                out.extend(stmts);
            }
        }
        out
    }

    fn stmt(&mut self, e: &Expression) -> L<Vec<Stmt>> {
        let span = self.sp(e.span);
        let one = |kind| Some(vec![Stmt { kind, span }]);
        match &e.expr {
            NuExpr::Call(call) => self.call_stmt(call, e),
            NuExpr::ExternalCall(head, args) => self.paren_call_stmt(head, args, e),
            NuExpr::BinaryOp(lhs, op, rhs) => match &op.expr {
                NuExpr::Operator(Operator::Assignment(a)) => {
                    let kind = self.assignment(lhs, *a, rhs, op.span)?;
                    one(kind)
                }
                _ => self.useless(e),
            },
            NuExpr::Garbage => None,
            NuExpr::Nothing => Some(vec![]),
            _ => self.useless(e),
        }
    }

    fn useless(&mut self, e: &Expression) -> L<Vec<Stmt>> {
        self.error(
            Diagnostic::error(
                "unused_value",
                "this value is computed and then thrown away",
                self.sp(e.span),
            )
            .with_label("unused")
            .with_help("send it to user space with `emit`, or aggregate it with `count --by`, `sum`, `hist`, ..."),
        )
    }

    fn decl_name(&self, call: &Call) -> String {
        self.ws.get_decl(call.decl_id).name().to_string()
    }

    fn call_stmt(&mut self, call: &Call, e: &Expression) -> L<Vec<Stmt>> {
        let span = self.sp(e.span);
        let name = self.decl_name(call);
        let decl = self.ws.get_decl(call.decl_id);
        if let Some(Decl::Body(cmd)) = (decl as &dyn std::any::Any).downcast_ref::<Decl>() {
            let cmd = *cmd;
            return self.body_command(cmd, call, span);
        }
        match name.as_str() {
            "let" | "mut" => self.let_stmt(call, name == "mut", span),
            "if" => {
                let kind = self.if_stmt(call)?;
                Some(vec![Stmt { kind, span }])
            }
            "return" => {
                if let Some(arg) = call.arguments.first() {
                    self.unsupported(
                        "returning a value",
                        arg.span(),
                        "a probe returns nothing; use `emit` to send a value, then `return`",
                    );
                    return None;
                }
                Some(vec![Stmt {
                    kind: StmtKind::Return,
                    span,
                }])
            }
            _ => self.error(
                Diagnostic::error(
                    "unsupported_command",
                    format!("`{name}` cannot run inside a probe"),
                    self.sp(call.head),
                )
                .with_label("not available in eBPF")
                .with_help(
                    "a probe body may use `let`, `mut`, `if`/`else`, `return`, `emit`, and \
                     `count`, `sum`, `min`, `max`, `avg`, `hist`, `lhist`",
                )
                .with_help(format!(
                    "to run `{name}` on the probe's output, pipe into it: `bpf_... {{...}} | {name} ...`"
                )),
            ),
        }
    }

    /// `emit($x)` and `count()`: Nushell parses them as an external command whose name is
    /// glued to a parenthesised subexpression. Recognised deliberately so the seed's
    /// call syntax works like `emit $x` and `count`.
    fn paren_call_stmt(
        &mut self,
        head: &Expression,
        args: &[nu_protocol::ast::ExternalArgument],
        e: &Expression,
    ) -> L<Vec<Stmt>> {
        let span = self.sp(e.span);
        if let NuExpr::GlobInterpolation(parts, _) = &head.expr
            && let [name_expr, paren] = parts.as_slice()
            && let NuExpr::String(name) = &name_expr.expr
            && let Some(cmd) = BodyCommand::from_name(name)
            && args.is_empty()
        {
            let inner = self.unwrap_cell(paren);
            let arg = match &inner.expr {
                NuExpr::Subexpression(id) => {
                    let block = self.ws.get_block(*id);
                    match block.pipelines.as_slice() {
                        [] => None,
                        [p] if p.elements.len() == 1 => Some(&p.elements[0].expr),
                        _ => {
                            self.unsupported(
                                "more than one expression in the parentheses",
                                inner.span,
                                "give one value: `emit($ctx.pid)` or `emit {pid: $ctx.pid}`",
                            );
                            return None;
                        }
                    }
                }
                _ => None,
            };
            return self.body_command_args(cmd, arg, &[], None, None, span, name_expr.span);
        }
        // `emitt($x)`: the name is the part glued to the parentheses.
        let glued = match &head.expr {
            NuExpr::GlobInterpolation(parts, _) => parts.first().and_then(|p| match &p.expr {
                NuExpr::String(name) => Some((name.clone(), p.span)),
                _ => None,
            }),
            _ => None,
        };
        let (name, name_span) = glued.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(self.ws.get_span_contents(head.span));
            (text.into_owned(), head.span)
        });
        let mut d = Diagnostic::error(
            "unknown_command",
            format!("`{name}` is not a command of the probe language"),
            self.sp(name_span),
        )
        .with_label("unknown");
        let body: Vec<&str> = BodyCommand::ALL.iter().map(|c| c.name()).collect();
        if let Some(s) = super::suggest::did_you_mean(body.iter().copied(), &name) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.error(d.with_help(
            "a probe body may use `let`, `mut`, `if`/`else`, `return`, `emit`, `count`, `sum`, \
             `min`, `max`, `avg`, `hist` and `lhist`",
        ))
    }

    fn let_stmt(&mut self, call: &Call, mutable: bool, span: Span) -> L<Vec<Stmt>> {
        let mut positional = call.arguments.iter().filter_map(|a| match a {
            Argument::Positional(e) => Some(e),
            _ => None,
        });
        let (Some(decl), Some(value)) = (positional.next(), positional.next()) else {
            return self.error(Diagnostic::internal("`let` without a value", span));
        };
        let NuExpr::VarDecl(var_id) = decl.expr else {
            return self.error(Diagnostic::internal("`let` without a variable", span));
        };
        let value_expr = self.block_value(value)?;
        let value = self.expr(&value_expr)?;
        let ty = match value.ty {
            // Integers in locals are 64-bit: a later `+=` must not wrap at the field's width.
            Ty::Int(i) if i.bytes < 8 => Ty::Int(IntTy::new(8, i.signed)),
            t => t,
        };
        let local = LocalId(self.locals.len() as u32);
        self.locals.push(ty);
        self.vars.insert(var_id, Var { local, ty, mutable });
        Some(vec![Stmt {
            kind: StmtKind::Let {
                local,
                value: coerce(value, ty),
            },
            span,
        }])
    }

    /// The expression inside a `let`'s value block or a subexpression.
    fn block_value(&mut self, e: &Expression) -> L<Expression> {
        match &e.expr {
            NuExpr::Block(id) | NuExpr::Subexpression(id) => {
                let block = self.ws.get_block(*id).clone();
                match block.pipelines.as_slice() {
                    [p] if p.elements.len() == 1 => Some(p.elements[0].expr.clone()),
                    [p] if p.elements.len() > 1 => {
                        let span = p.elements[1].pipe.unwrap_or(p.elements[1].expr.span);
                        self.unsupported(
                            "a pipeline",
                            span,
                            "compute the value with operators; pipelines run in user space only",
                        );
                        None
                    }
                    _ => {
                        self.unsupported(
                            "a block with several statements",
                            e.span,
                            "give one expression",
                        );
                        None
                    }
                }
            }
            _ => Some(e.clone()),
        }
    }

    fn assignment(
        &mut self,
        lhs: &Expression,
        op: Assignment,
        rhs: &Expression,
        op_span: nu_protocol::Span,
    ) -> L<StmtKind> {
        let target = self.unwrap_cell(lhs);
        let var = match &target.expr {
            NuExpr::Var(id) => self.vars.get(id).copied(),
            _ => None,
        };
        let Some(var) = var else {
            return self.error(
                Diagnostic::error(
                    "bad_assignment",
                    "only a variable declared with `mut` can be assigned",
                    self.sp(lhs.span),
                )
                .with_label("not a probe variable"),
            );
        };
        if !var.mutable {
            return self.error(
                Diagnostic::error(
                    "immutable",
                    "this variable was declared with `let` and cannot change",
                    self.sp(lhs.span),
                )
                .with_label("immutable")
                .with_help("declare it with `mut` instead of `let`"),
            );
        }
        let rhs = self.block_value(rhs)?;
        let value = self.expr(&rhs)?;
        let current = Expr::new(ExprKind::Local(var.local), var.ty, self.sp(lhs.span));
        let span = self.sp(lhs.span).to(value.span);
        let value = match op {
            Assignment::Assign => value,
            Assignment::AddAssign => self.arith(BinOp::Add, current, value, span)?,
            Assignment::SubtractAssign => self.arith(BinOp::Sub, current, value, span)?,
            Assignment::MultiplyAssign => self.arith(BinOp::Mul, current, value, span)?,
            Assignment::DivideAssign => self.arith(BinOp::Div, current, value, span)?,
            Assignment::ConcatenateAssign => {
                self.unsupported(
                    "string concatenation",
                    op_span,
                    "emit the parts as separate columns",
                );
                return None;
            }
        };
        if !same_kind(value.ty, var.ty) {
            return self.error(type_mismatch(var.ty, value.ty, value.span));
        }
        Some(StmtKind::Assign {
            local: var.local,
            value: coerce(value, var.ty),
        })
    }

    fn if_stmt(&mut self, call: &Call) -> L<StmtKind> {
        let positional: Vec<&Expression> = call
            .arguments
            .iter()
            .filter_map(|a| match a {
                Argument::Positional(e) => Some(e),
                _ => None,
            })
            .collect();
        let [cond, then, rest @ ..] = positional.as_slice() else {
            return self.error(Diagnostic::internal(
                "`if` without a block",
                self.sp(call.head),
            ));
        };
        let cond = self.cond(cond);
        let then = self.sub_block(then);
        let otherwise = match rest.first() {
            None => Some(vec![]),
            Some(e) => match &e.expr {
                NuExpr::Keyword(k) => match &k.expr.expr {
                    NuExpr::Block(_) => self.sub_block(&k.expr),
                    NuExpr::Call(inner) if self.decl_name(inner) == "if" => {
                        let span = self.sp(k.expr.span);
                        self.if_stmt(inner).map(|kind| vec![Stmt { kind, span }])
                    }
                    _ => {
                        self.unsupported("this `else` form", k.expr.span, "use `else { ... }`");
                        None
                    }
                },
                _ => {
                    self.unsupported(
                        "this `if` form",
                        e.span,
                        "use `if cond { ... } else { ... }`",
                    );
                    None
                }
            },
        };
        Some(StmtKind::If {
            cond: cond?,
            then: then?,
            otherwise: otherwise?,
        })
    }

    fn sub_block(&mut self, e: &Expression) -> L<Vec<Stmt>> {
        match &e.expr {
            NuExpr::Block(id) | NuExpr::Closure(id) => {
                let block = self.ws.get_block(*id).clone();
                Some(self.block(&block))
            }
            _ => {
                self.unsupported("this block form", e.span, "use `{ ... }`");
                None
            }
        }
    }

    /// A condition: must be a bool.
    fn cond(&mut self, e: &Expression) -> L<Expr> {
        let c = self.expr(e)?;
        if c.ty != Ty::Bool {
            return self.error(
                Diagnostic::error(
                    "type_mismatch",
                    format!("a condition must be a bool, this is {}", describe(c.ty)),
                    c.span,
                )
                .with_label(format!("{}, not bool", describe(c.ty)))
                .with_help("compare it, e.g. `$x != 0` or `$s == \"text\"`"),
            );
        }
        Some(c)
    }

    // ---- body commands ------------------------------------------------------------------

    fn body_command(&mut self, cmd: BodyCommand, call: &Call, span: Span) -> L<Vec<Stmt>> {
        let mut positional = Vec::new();
        let mut by = None;
        let mut name = None;
        for arg in &call.arguments {
            match arg {
                Argument::Positional(e) => positional.push(e),
                Argument::Named((flag, _, value)) => match (flag.item.as_str(), value) {
                    ("by", Some(v)) => by = Some(v),
                    ("as", Some(v)) => name = Some(v),
                    _ => {}
                },
                Argument::Unknown(e) | Argument::Spread(e) => {
                    self.unsupported("this argument", e.span, "see `help` of the command");
                    return None;
                }
            }
        }
        let first = positional.first().copied();
        let rest: Vec<&Expression> = positional.iter().skip(1).copied().collect();
        self.body_command_args(cmd, first, &rest, by, name, span, call.head)
    }

    #[allow(clippy::too_many_arguments)]
    fn body_command_args(
        &mut self,
        cmd: BodyCommand,
        value: Option<&Expression>,
        rest: &[&Expression],
        by: Option<&Expression>,
        name: Option<&Expression>,
        span: Span,
        head: nu_protocol::Span,
    ) -> L<Vec<Stmt>> {
        if cmd == BodyCommand::Emit {
            let Some(value) = value else {
                return self.error(
                    Diagnostic::error("missing_value", "`emit` needs a value", self.sp(head))
                        .with_label("emit what?")
                        .with_help(
                            "e.g. `emit $ctx.pid` or `emit {pid: $ctx.pid, comm: $ctx.comm}`",
                        ),
                );
            };
            let fields = self.record_fields(value, "value")?;
            return Some(vec![Stmt {
                kind: StmtKind::Emit { fields },
                span,
            }]);
        }
        let kind = match cmd {
            BodyCommand::Count => AggKind::Count,
            BodyCommand::Sum => AggKind::Sum,
            BodyCommand::Min => AggKind::Min,
            BodyCommand::Max => AggKind::Max,
            BodyCommand::Avg => AggKind::Avg,
            BodyCommand::Hist => AggKind::Hist,
            BodyCommand::Lhist => {
                let mut nums = Vec::new();
                for e in rest {
                    match e.expr {
                        NuExpr::Int(v) => nums.push(v),
                        _ => {
                            return self.error(
                                Diagnostic::error(
                                    "bad_argument",
                                    "`lhist` bounds must be integer literals",
                                    self.sp(e.span),
                                )
                                .with_label("not a literal"),
                            );
                        }
                    }
                }
                let [min, max, step] = nums[..] else {
                    return self.error(
                        Diagnostic::error(
                            "bad_argument",
                            "`lhist` needs a value, min, max and step",
                            self.sp(head),
                        )
                        .with_help("e.g. `lhist $ctx.ret 0 100 10`"),
                    );
                };
                if step <= 0 || max <= min || (max - min) / step > 10_000 {
                    return self.error(
                        Diagnostic::error(
                            "bad_argument",
                            "`lhist` needs min < max, a positive step, and at most 10000 buckets",
                            self.sp(head),
                        )
                        .with_label("bad bounds"),
                    );
                }
                AggKind::Lhist { min, max, step }
            }
            BodyCommand::Emit => unreachable!("handled above"),
        };
        let value = match (kind.takes_value(), value) {
            (false, Some(v)) => {
                self.unsupported(
                    "a value for `count`",
                    v.span,
                    "`count` counts events; to count per value use `count --by <value>`",
                );
                return None;
            }
            (false, None) => None,
            (true, None) => {
                return self.error(
                    Diagnostic::error(
                        "missing_value",
                        format!("`{}` needs a value", cmd.name()),
                        self.sp(head),
                    )
                    .with_label("of what?")
                    .with_help(format!("e.g. `{} $ctx.bytes`", cmd.name())),
                );
            }
            (true, Some(v)) => {
                let e = self.expr(v)?;
                if int_ty(e.ty).is_none() {
                    return self.error(
                        Diagnostic::error(
                            "type_mismatch",
                            format!(
                                "`{}` aggregates integers, this is {}",
                                cmd.name(),
                                describe(e.ty)
                            ),
                            e.span,
                        )
                        .with_label(format!("{}, not an integer", describe(e.ty)))
                        .with_help("to count per string, use `count --by <string>`"),
                    );
                }
                Some((e, column_name(self.ws, v)))
            }
        };
        let key = match by {
            Some(by) => self.record_fields(by, "key")?,
            None => Vec::new(),
        };
        let agg_name = match name {
            Some(n) => match &n.expr {
                NuExpr::String(s) => s.clone(),
                _ => {
                    return self.error(
                        Diagnostic::error(
                            "bad_argument",
                            "`--as` takes a literal name",
                            self.sp(n.span),
                        )
                        .with_label("not a literal"),
                    );
                }
            },
            None => match &value {
                Some((_, Some(col))) => format!("{}_{col}", cmd.name()),
                _ => cmd.name().to_string(),
            },
        };
        // Counts are unsigned; a value's signedness decides its aggregation's.
        let signed = value
            .as_ref()
            .and_then(|(e, _)| int_ty(e.ty))
            .is_some_and(|t| t.signed);
        let decl = AggDecl {
            name: agg_name.clone(),
            probe: self.probe_index,
            kind,
            key: key.iter().map(|(n, e)| (n.clone(), e.ty)).collect(),
            signed,
            span,
        };
        let agg = self.declare_aggregation(decl)?;
        Some(vec![Stmt {
            kind: StmtKind::Aggregate {
                agg,
                key: key.into_iter().map(|(_, e)| e).collect(),
                value: value
                    .map(|(e, _)| coerce(e, Ty::Int(if signed { IntTy::I64 } else { IntTy::U64 }))),
            },
            span,
        }])
    }

    /// Finds or adds an aggregation. The same name with the same shape in one probe is the
    /// same aggregation (e.g. `count` in two branches); a different shape is an error.
    fn declare_aggregation(&mut self, decl: AggDecl) -> L<AggId> {
        if let Some((i, existing)) = self
            .aggregations
            .iter()
            .enumerate()
            .find(|(_, a)| a.probe == decl.probe && a.name == decl.name)
        {
            if existing.kind == decl.kind && existing.key == decl.key {
                return Some(AggId(i as u32));
            }
            return self.error(
                Diagnostic::error(
                    "aggregation_conflict",
                    format!(
                        "`{}` is already an aggregation of another kind or key in this probe",
                        decl.name
                    ),
                    decl.span,
                )
                .with_label("conflicting definition")
                .with_help("give this one its own name with `--as <name>`"),
            );
        }
        self.aggregations.push(decl);
        Some(AggId(self.aggregations.len() as u32 - 1))
    }

    /// A record literal's fields, or a single value as a one-field record named after the
    /// cell path's last member (or `default`).
    fn record_fields(&mut self, e: &Expression, default: &str) -> L<Vec<(String, Expr)>> {
        let inner = self.unwrap_cell(e);
        if let NuExpr::Record(items) = &inner.expr {
            let mut fields: Vec<(String, Expr)> = Vec::new();
            let mut ok = true;
            for item in items {
                match item {
                    RecordItem::Pair(k, v) => {
                        let name = match &k.expr {
                            NuExpr::String(s) | NuExpr::RawString(s) => s.clone(),
                            _ => {
                                self.unsupported(
                                    "a computed column name",
                                    k.span,
                                    "write the name literally",
                                );
                                ok = false;
                                continue;
                            }
                        };
                        if fields.iter().any(|(n, _)| *n == name) {
                            self.diags.push(
                                Diagnostic::error(
                                    "duplicate_column",
                                    format!("column `{name}` appears twice"),
                                    self.sp(k.span),
                                )
                                .with_label("duplicate"),
                            );
                            ok = false;
                            continue;
                        }
                        if let NuExpr::Record(_) = self.unwrap_cell(v).expr {
                            self.unsupported("a nested record", v.span, "flatten it into columns");
                            ok = false;
                            continue;
                        }
                        match self.expr(v) {
                            Some(e) => fields.push((name, e)),
                            None => ok = false,
                        }
                    }
                    RecordItem::Spread(span, _) => {
                        self.unsupported("spreading a record", *span, "list the columns");
                        ok = false;
                    }
                }
            }
            if fields.is_empty() && ok {
                return self.error(
                    Diagnostic::error("empty_record", "the record has no columns", self.sp(e.span))
                        .with_label("empty"),
                );
            }
            return ok.then_some(fields);
        }
        let value = self.expr(e)?;
        let name = column_name(self.ws, e).unwrap_or_else(|| default.to_string());
        Some(vec![(name, value)])
    }

    // ---- expressions --------------------------------------------------------------------

    /// Strips the `FullCellPath` wrapper nu puts around every non-path value.
    fn unwrap_cell<'e>(&self, e: &'e Expression) -> &'e Expression {
        match &e.expr {
            NuExpr::FullCellPath(p) if p.tail.is_empty() => self.unwrap_cell(&p.head),
            _ => e,
        }
    }

    pub fn expr(&mut self, e: &Expression) -> L<Expr> {
        let span = self.sp(e.span);
        match &e.expr {
            NuExpr::Int(v) => Some(Expr::int(*v, IntTy::I64, span)),
            NuExpr::Bool(b) => Some(Expr::new(ExprKind::Bool(*b), Ty::Bool, span)),
            NuExpr::String(s) | NuExpr::RawString(s) => Some(str_literal(s, span)),
            NuExpr::ValueWithUnit(v) => {
                let n = match v.expr.expr {
                    NuExpr::Int(n) => n,
                    _ => {
                        self.unsupported("a fractional quantity", e.span, "use a whole number");
                        return None;
                    }
                };
                match v.unit.item.build_value(n, e.span) {
                    Ok(Value::Duration { val, .. }) => Some(Expr::int(val, IntTy::I64, span)),
                    Ok(Value::Filesize { val, .. }) => Some(Expr::int(val.get(), IntTy::I64, span)),
                    _ => {
                        self.unsupported("this quantity", e.span, "durations and file sizes work");
                        None
                    }
                }
            }
            NuExpr::FullCellPath(path) => {
                if path.tail.is_empty() {
                    return self.expr(&path.head);
                }
                match &path.head.expr {
                    NuExpr::Var(id) if Some(*id) == self.ctx_var => {
                        self.ctx_path(&path.tail, e.span)
                    }
                    NuExpr::Var(_) => {
                        self.unsupported("a field of a variable", e.span, "only `$ctx` has fields");
                        None
                    }
                    _ => {
                        self.unsupported("a cell path on this value", e.span, "use `$ctx.<field>`");
                        None
                    }
                }
            }
            NuExpr::Var(id) => {
                if Some(*id) == self.ctx_var {
                    return self.error(
                        Diagnostic::error(
                            "whole_context",
                            "the whole context cannot be used as a value",
                            span,
                        )
                        .with_label("pick a field")
                        .with_help(format!("use a field, e.g. `{}.pid`", self.ws_text(e.span))),
                    );
                }
                match self.vars.get(id).copied() {
                    Some(var) => Some(Expr::new(ExprKind::Local(var.local), var.ty, span)),
                    None => self.error(
                        Diagnostic::error(
                            "outside_variable",
                            "variables from outside the probe are not available inside it",
                            span,
                        )
                        .with_label("defined outside the closure")
                        .with_help("probes run in the kernel; declare values inside the closure with `let`"),
                    ),
                }
            }
            NuExpr::Subexpression(_) | NuExpr::Block(_) => {
                let inner = self.block_value(e)?;
                let mut x = self.expr(&inner)?;
                x.span = span;
                Some(x)
            }
            NuExpr::UnaryNot(inner) => {
                let c = self.cond(inner)?;
                Some(Expr::new(
                    ExprKind::Unary(UnOp::Not, Box::new(c)),
                    Ty::Bool,
                    span,
                ))
            }
            NuExpr::BinaryOp(lhs, op, rhs) => {
                // nu leaves a garbage operator after a type error it already reported.
                let NuExpr::Operator(operator) = op.expr else {
                    return None;
                };
                self.binary(lhs, operator, op.span, rhs, span)
            }
            NuExpr::Garbage => None,
            NuExpr::Call(call) => {
                let name = self.decl_name(call);
                self.error(
                    Diagnostic::error(
                        "unsupported_command",
                        format!("`{name}` cannot be used as a value inside a probe"),
                        self.sp(call.head),
                    )
                    .with_label("not available in eBPF")
                    .with_help("values come from `$ctx` fields, literals, variables and operators"),
                )
            }
            other => {
                self.unsupported(
                    other.description(),
                    e.span,
                    "use integers, bools, strings, `$ctx` fields and variables",
                );
                None
            }
        }
    }

    fn ws_text(&self, span: nu_protocol::Span) -> String {
        String::from_utf8_lossy(self.ws.get_span_contents(span)).into_owned()
    }

    fn binary(
        &mut self,
        lhs: &Expression,
        op: Operator,
        op_span: nu_protocol::Span,
        rhs: &Expression,
        span: Span,
    ) -> L<Expr> {
        match op {
            Operator::Boolean(b) => {
                let (l, r) = (self.cond(lhs), self.cond(rhs));
                let (l, r) = (Box::new(l?), Box::new(r?));
                let kind = match b {
                    Boolean::And => ExprKind::And(l, r),
                    Boolean::Or => ExprKind::Or(l, r),
                    Boolean::Xor => ExprKind::Cmp(CmpOp::Ne, l, r),
                };
                Some(Expr::new(kind, Ty::Bool, span))
            }
            Operator::Comparison(Comparison::In | Comparison::NotIn) => {
                let negate = matches!(op, Operator::Comparison(Comparison::NotIn));
                self.membership(lhs, rhs, negate, span)
            }
            Operator::Comparison(c) => {
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                self.compare(c, l?, r?, op_span, span)
            }
            Operator::Math(m) => {
                let bin = match m {
                    Math::Add => BinOp::Add,
                    Math::Subtract => BinOp::Sub,
                    Math::Multiply => BinOp::Mul,
                    Math::Divide | Math::FloorDivide => BinOp::Div,
                    Math::Modulo => BinOp::Mod,
                    Math::Pow => {
                        self.unsupported("`**`", op_span, "multiply, or shift with `bit-shl`");
                        return None;
                    }
                    Math::Concatenate => {
                        self.unsupported("`++`", op_span, "emit the parts as separate columns");
                        return None;
                    }
                };
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                self.arith(bin, l?, r?, span)
            }
            Operator::Bits(b) => {
                let bin = match b {
                    Bits::BitAnd => BinOp::BitAnd,
                    Bits::BitOr => BinOp::BitOr,
                    Bits::BitXor => BinOp::BitXor,
                    Bits::ShiftLeft => BinOp::Shl,
                    Bits::ShiftRight => BinOp::Shr,
                };
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                self.arith(bin, l?, r?, span)
            }
            Operator::Assignment(_) => {
                self.unsupported(
                    "an assignment inside an expression",
                    op_span,
                    "assign as a statement of its own",
                );
                None
            }
        }
    }

    /// Integer arithmetic. The result is 64-bit: unsigned when both sides are, else signed
    /// (Nushell's integers are `i64`).
    fn arith(&mut self, op: BinOp, l: Expr, r: Expr, span: Span) -> L<Expr> {
        for side in [&l, &r] {
            if int_ty(side.ty).is_none() {
                return self.error(
                    Diagnostic::error(
                        "type_mismatch",
                        format!("arithmetic needs integers, this is {}", describe(side.ty)),
                        side.span,
                    )
                    .with_label(format!("{}, not an integer", describe(side.ty))),
                );
            }
        }
        let (lt, rt) = (int_ty(l.ty)?, int_ty(r.ty)?);
        let unsigned = (!lt.signed || is_nonneg_literal(&l))
            && (!rt.signed || is_nonneg_literal(&r))
            && !(is_literal(&l) && is_literal(&r));
        let ty = Ty::Int(if unsigned { IntTy::U64 } else { IntTy::I64 });
        Some(Expr::new(
            ExprKind::Binary(op, Box::new(coerce(l, ty)), Box::new(coerce(r, ty))),
            ty,
            span,
        ))
    }

    fn compare(
        &mut self,
        c: Comparison,
        l: Expr,
        r: Expr,
        op_span: nu_protocol::Span,
        span: Span,
    ) -> L<Expr> {
        let cmp = match c {
            Comparison::Equal => CmpOp::Eq,
            Comparison::NotEqual => CmpOp::Ne,
            Comparison::LessThan => CmpOp::Lt,
            Comparison::GreaterThan => CmpOp::Gt,
            Comparison::LessThanOrEqual => CmpOp::Le,
            Comparison::GreaterThanOrEqual => CmpOp::Ge,
            Comparison::StartsWith
            | Comparison::NotStartsWith
            | Comparison::EndsWith
            | Comparison::NotEndsWith => {
                let op = if matches!(c, Comparison::StartsWith | Comparison::NotStartsWith) {
                    StrOp::StartsWith
                } else {
                    StrOp::EndsWith
                };
                let negate = matches!(c, Comparison::NotStartsWith | Comparison::NotEndsWith);
                let lit = self.string_test_operands(&l, &r, c.as_str())?;
                let test = Expr::new(ExprKind::StrMatch(op, Box::new(l), lit), Ty::Bool, span);
                return Some(if negate {
                    Expr::new(ExprKind::Unary(UnOp::Not, Box::new(test)), Ty::Bool, span)
                } else {
                    test
                });
            }
            Comparison::RegexMatch | Comparison::NotRegexMatch => {
                self.unsupported(
                    "`=~` (a regular expression match)",
                    op_span,
                    "use `==`, `starts-with` or `ends-with`, or filter with `where $it.x =~ ...` after the probe",
                );
                return None;
            }
            Comparison::Has | Comparison::NotHas | Comparison::In | Comparison::NotIn => {
                self.unsupported(
                    &format!("`{}`", c.as_str()),
                    op_span,
                    "compare with `==` or use `in [ ... ]`",
                );
                return None;
            }
        };
        match (l.ty, r.ty) {
            (Ty::Str { .. }, Ty::Str { .. }) => {
                if !matches!(cmp, CmpOp::Eq | CmpOp::Ne) {
                    self.unsupported(
                        "ordering strings",
                        op_span,
                        "compare strings with `==` or `!=`",
                    );
                    return None;
                }
                // Prefer the literal on the right: codegen compares a buffer with a literal.
                let (l, r) = if let ExprKind::Str(_) = l.kind {
                    (r, l)
                } else {
                    (l, r)
                };
                if let (ExprKind::Str(_), ExprKind::Str(_)) = (&l.kind, &r.kind) {
                    let equal = l.kind == r.kind;
                    return Some(Expr::new(
                        ExprKind::Bool(equal == (cmp == CmpOp::Eq)),
                        Ty::Bool,
                        span,
                    ));
                }
                if let ExprKind::Str(lit) = &r.kind {
                    let op = if cmp == CmpOp::Eq {
                        StrOp::Eq
                    } else {
                        StrOp::Ne
                    };
                    let lit = lit.clone();
                    return Some(Expr::new(
                        ExprKind::StrMatch(op, Box::new(l), lit),
                        Ty::Bool,
                        span,
                    ));
                }
                Some(Expr::new(
                    ExprKind::Cmp(cmp, Box::new(l), Box::new(r)),
                    Ty::Bool,
                    span,
                ))
            }
            (Ty::Bool, Ty::Bool) if matches!(cmp, CmpOp::Eq | CmpOp::Ne) => Some(Expr::new(
                ExprKind::Cmp(cmp, Box::new(l), Box::new(r)),
                Ty::Bool,
                span,
            )),
            (Ty::Int(lt), Ty::Int(rt)) => {
                // A literal the other side's type cannot hold makes the comparison constant:
                // almost always a mistake (a negative bound on an unsigned field, a mask
                // wider than the field), said rather than silently truncated or widened.
                for (value, other, other_ty, on_right) in [(&r, &l, lt, true), (&l, &r, rt, false)]
                {
                    let ExprKind::Int(v) = value.kind else {
                        continue;
                    };
                    if matches!(other.kind, ExprKind::Int(_)) {
                        continue;
                    }
                    // `x < 0` / `x >= 0` (or `0 > x` / `0 <= x`) on an unsigned `x`.
                    let sign_test = v == 0
                        && !other_ty.signed
                        && matches!(
                            (on_right, cmp),
                            (true, CmpOp::Lt | CmpOp::Ge) | (false, CmpOp::Gt | CmpOp::Le)
                        );
                    if sign_test {
                        self.diags.push(
                            Diagnostic::warning(
                                "constant_comparison",
                                format!(
                                    "{} is never below 0, so this comparison never changes",
                                    describe(other.ty)
                                ),
                                span,
                            )
                            .with_label(format!("{} is unsigned", other_ty.name()))
                            .with_help("kernel functions return errors as negative numbers in signed values (`retval` of a kretprobe is i64)"),
                        );
                        continue;
                    }
                    if int_fits(v, other_ty) {
                        continue;
                    }
                    let (lo, hi) = int_range(other_ty);
                    // Against a u64 the comparison runs on 64-bit patterns: -1 is u64::MAX.
                    let message = if other_ty == IntTy::U64 {
                        format!(
                            "`{v}` is negative and {} never is: it compares as {}",
                            describe(other.ty),
                            v as u64
                        )
                    } else {
                        format!(
                            "`{v}` is outside the range of {}, so this comparison never changes",
                            describe(other.ty)
                        )
                    };
                    let mut d = Diagnostic::warning("constant_comparison", message, span)
                        .with_label(format!("{} holds {lo} to {hi}", other_ty.name()));
                    if v < 0 && !other_ty.signed {
                        d = d.with_help(
                            "the value is unsigned and never negative; kernel functions return errors as negative numbers in signed values (`retval` of a kretprobe is i64)",
                        );
                    }
                    self.diags.push(d);
                }
                // Mixed signedness compares as i64, exact unless the unsigned side is u64.
                if !is_nonneg_literal(&l)
                    && !is_nonneg_literal(&r)
                    && !matches!(l.kind, ExprKind::Int(_))
                    && !matches!(r.kind, ExprKind::Int(_))
                    && lt.signed != rt.signed
                    && (lt == IntTy::U64 || rt == IntTy::U64)
                {
                    self.diags.push(
                        Diagnostic::warning(
                            "mixed_signedness",
                            format!(
                                "comparing {} with {}: both are compared as i64, so u64 values above {} count as negative",
                                describe(l.ty),
                                describe(r.ty),
                                i64::MAX
                            ),
                            span,
                        )
                        .with_label("signed vs unsigned")
                        .with_help("compare values of one signedness, e.g. check the signed side for `< 0` first"),
                    );
                }
                // A non-negative literal takes the other side's type, so `$ctx.pid > 1000`
                // compares unsigned as the field is.
                let (l, r) = match (is_nonneg_literal(&l), is_nonneg_literal(&r)) {
                    (false, true) if !lt.signed && literal_fits(&r, lt) => {
                        let t = l.ty;
                        (l, coerce(r, t))
                    }
                    (true, false) if !rt.signed && literal_fits(&l, rt) => {
                        let t = r.ty;
                        (coerce(l, t), r)
                    }
                    _ if lt.signed != rt.signed => {
                        // Mixed signedness: compare as signed 64-bit values.
                        (
                            coerce(l, Ty::Int(IntTy::I64)),
                            coerce(r, Ty::Int(IntTy::I64)),
                        )
                    }
                    _ => (l, r),
                };
                Some(Expr::new(
                    ExprKind::Cmp(cmp, Box::new(l), Box::new(r)),
                    Ty::Bool,
                    span,
                ))
            }
            (a, b) => self.error(
                Diagnostic::error(
                    "type_mismatch",
                    format!("cannot compare {} with {}", describe(a), describe(b)),
                    span,
                )
                .with_label(format!("{} vs {}", describe(a), describe(b)))
                .with_help("both sides must be integers, both strings, or both bools"),
            ),
        }
    }

    /// `starts-with` / `ends-with` take a string on the left and a literal on the right.
    fn string_test_operands(&mut self, l: &Expr, r: &Expr, op: &str) -> L<Vec<u8>> {
        if !l.ty.is_str() {
            return self.error(
                Diagnostic::error(
                    "type_mismatch",
                    format!("`{op}` needs a string on the left"),
                    l.span,
                )
                .with_label(format!("{}, not a string", describe(l.ty))),
            );
        }
        match &r.kind {
            ExprKind::Str(lit) => Some(lit.clone()),
            _ => self.error(
                Diagnostic::error(
                    "unsupported",
                    format!("`{op}` needs a string literal on the right"),
                    r.span,
                )
                .with_label("not a literal")
                .with_help("e.g. `$ctx.filename starts-with \"/etc/\"`"),
            ),
        }
    }

    /// `x in [a b c]`: a chain of equalities.
    fn membership(
        &mut self,
        lhs: &Expression,
        rhs: &Expression,
        negate: bool,
        span: Span,
    ) -> L<Expr> {
        let l = self.expr(lhs)?;
        let list = self.unwrap_cell(rhs);
        let NuExpr::List(items) = &list.expr else {
            return self.error(
                Diagnostic::error(
                    "unsupported",
                    "`in` needs a list literal",
                    self.sp(rhs.span),
                )
                .with_label("not a list literal")
                .with_help("e.g. `$ctx.comm in [\"bash\" \"sh\"]`"),
            );
        };
        let mut chain: Option<Expr> = None;
        for item in items {
            let ListItem::Item(item) = item else {
                self.unsupported("spreading into `in`", list.span, "list the values");
                return None;
            };
            let r = self.expr(item)?;
            if !is_literal(&r) && !matches!(r.kind, ExprKind::Str(_)) {
                return self.error(
                    Diagnostic::error("unsupported", "`in` lists must hold literals", r.span)
                        .with_label("not a literal"),
                );
            }
            let eq = self.compare(Comparison::Equal, l.clone(), r, item.span, span)?;
            chain = Some(match chain {
                None => eq,
                Some(prev) => Expr::new(ExprKind::Or(Box::new(prev), Box::new(eq)), Ty::Bool, span),
            });
        }
        let test = chain.unwrap_or_else(|| Expr::new(ExprKind::Bool(false), Ty::Bool, span));
        Some(if negate {
            Expr::new(ExprKind::Unary(UnOp::Not, Box::new(test)), Ty::Bool, span)
        } else {
            test
        })
    }

    // ---- context fields -----------------------------------------------------------------

    fn member_name<'p>(&mut self, m: &'p PathMember) -> L<(&'p str, Span)> {
        match m {
            PathMember::String { val, span, .. } => Some((val.as_str(), self.sp(*span))),
            PathMember::Int { span, .. } => self.error(
                Diagnostic::error("unsupported", "only arrays can be indexed", self.sp(*span))
                    .with_label("not an array here")
                    .with_help(
                        "name a field: `$ctx.<field>`; `.N` picks element N of an array field",
                    ),
            ),
        }
    }

    /// `$ctx.a.b.c`.
    fn ctx_path(&mut self, tail: &[PathMember], whole: nu_protocol::Span) -> L<Expr> {
        let span = self.sp(whole);
        let (first, first_span) = self.member_name(&tail[0])?;
        let first = first.to_string();
        let mut rest = &tail[1..];
        let common = match first.as_str() {
            "pid" => Some(builtin(Builtin::Pid, span)),
            "tid" => Some(builtin(Builtin::Tid, span)),
            "uid" => Some(builtin(Builtin::Uid, span)),
            "gid" => Some(builtin(Builtin::Gid, span)),
            "comm" => Some(builtin(Builtin::Comm, span)),
            "ts" => Some(builtin(Builtin::Ktime, span)),
            "cpu" => Some(builtin(Builtin::Cpu, span)),
            "probe" => Some(str_literal(&self.probe_name.clone(), span)),
            _ => None,
        };
        if let Some(e) = common {
            if let Some(m) = rest.first() {
                let (_, s) = self.member_name(m)?;
                return self.error(
                    Diagnostic::error("unknown_field", format!("`{first}` has no fields"), s)
                        .with_label("no such field"),
                );
            }
            return Some(e);
        }
        let mut name = first.clone();
        let mut name_span = first_span;
        // `$ctx.args.<field>` reaches the target's own fields, unless the target has an array
        // field named `args` (raw_syscalls:sys_enter) and this is `$ctx.args.N` or `$ctx.args`.
        let args_is_field = match self.fields {
            Fields::Tracepoint { format, .. } => format.field("args").is_some(),
            Fields::Btf { params, .. } => params.iter().any(|p| p.name == "args"),
            _ => false,
        } && !matches!(rest.first(), Some(PathMember::String { .. }));
        if first == "args" && !args_is_field {
            let Some(m) = rest.first() else {
                return self.error(
                    Diagnostic::error(
                        "whole_context",
                        "`args` cannot be used as a whole",
                        first_span,
                    )
                    .with_label("pick an argument")
                    .with_help(format!(
                        "e.g. `$ctx.args.{}`",
                        self.field_names()
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "arg0".into())
                    )),
                );
            };
            let (n, s) = self.member_name(m)?;
            name = n.to_string();
            name_span = s;
            rest = &rest[1..];
        }
        let fields = self.fields;
        match fields {
            Fields::Tracepoint {
                format,
                user_strings,
            } => {
                let Some(field) = format.field(&name) else {
                    return self.unknown_field(&name, name_span);
                };
                if let FieldKind::Array { len } = field.kind {
                    let e = self.tracepoint_element(field, len, rest.first(), span)?;
                    self.no_more(&rest[1..], &name)?;
                    return Some(e);
                }
                let e = self.tracepoint_field(field, *user_strings, span)?;
                self.no_more(rest, &name)?;
                Some(e)
            }
            Fields::Btf {
                btf,
                params,
                ret,
                ret_in_args,
            } => {
                let (value, ty) = if let Some(i) = params.iter().position(|p| p.name == name) {
                    (
                        Expr::new(
                            ExprKind::Ctx(CtxRead::Arg(i as u8)),
                            Ty::Int(IntTy::U64),
                            span,
                        ),
                        params[i].ty,
                    )
                } else if let Some(n) = arg_index(&name).filter(|n| (*n as usize) < params.len()) {
                    (
                        Expr::new(ExprKind::Ctx(CtxRead::Arg(n)), Ty::Int(IntTy::U64), span),
                        params[n as usize].ty,
                    )
                } else if let (true, Some(ret)) = (name == "retval", ret) {
                    // fexit finds the return value after the arguments; kretprobes in `ax`.
                    let read = if *ret_in_args {
                        CtxRead::Arg(params.len() as u8)
                    } else {
                        CtxRead::RetVal
                    };
                    (
                        Expr::new(ExprKind::Ctx(read), Ty::Int(IntTy::U64), span),
                        *ret,
                    )
                } else {
                    return self.unknown_field(&name, name_span);
                };
                self.btf_value(btf, value, ty, rest, AddrSpace::Auto, span)
            }
            Fields::Registers { ret } => {
                let read = if let Some(n) = arg_index(&name) {
                    CtxRead::Arg(n)
                } else if name == "retval" && *ret {
                    CtxRead::RetVal
                } else {
                    return self.unknown_field(&name, name_span);
                };
                self.no_more(rest, &name)?;
                let ty = if read == CtxRead::RetVal {
                    IntTy::I64
                } else {
                    IntTy::U64
                };
                Some(Expr::new(ExprKind::Ctx(read), Ty::Int(ty), span))
            }
            Fields::Known { function, ret } => {
                let known = function
                    .fields
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v);
                let value = match (known, arg_index(&name)) {
                    (Some(v), _) => v,
                    (None, Some(n)) => KnownValue::Int(n),
                    (None, None) if name == "retval" => KnownValue::RetInt,
                    _ => return self.unknown_field(&name, name_span),
                };
                if value.at_return() {
                    self.return_use.get_or_insert(name_span);
                } else if *ret {
                    // Arguments are gone by the time a function returns.
                    return self.error(
                        Diagnostic::error(
                            "entry_field_at_return",
                            format!(
                                "`{name}` is an argument, unknown when `{}` returns",
                                function.symbol
                            ),
                            name_span,
                        )
                        .with_label("known at entry only")
                        .with_help("read it in a `bpf_uprobe` on the same function"),
                    );
                } else {
                    self.entry_use.get_or_insert(name_span);
                }
                self.no_more(rest, &name)?;
                let user_str = |addr: CtxRead, strlen: u16| {
                    let addr = Expr::new(ExprKind::Ctx(addr), Ty::Int(IntTy::U64), span);
                    Expr::new(
                        ExprKind::ReadStr {
                            space: AddrSpace::User,
                            addr: Box::new(addr),
                        },
                        Ty::Str { cap: strlen },
                        span,
                    )
                };
                Some(match value {
                    KnownValue::Int(n) => {
                        Expr::new(ExprKind::Ctx(CtxRead::Arg(n)), Ty::Int(IntTy::U64), span)
                    }
                    KnownValue::Str(n) => user_str(CtxRead::Arg(n), self.strlen),
                    KnownValue::RetInt => {
                        Expr::new(ExprKind::Ctx(CtxRead::RetVal), Ty::Int(IntTy::I64), span)
                    }
                    KnownValue::RetStr => user_str(CtxRead::RetVal, self.strlen),
                })
            }
            Fields::Profile => {
                if name == "ip" {
                    self.no_more(rest, &name)?;
                    return Some(Expr::new(
                        ExprKind::Ctx(CtxRead::Ip),
                        Ty::Int(IntTy::U64),
                        span,
                    ));
                }
                self.unknown_field(&name, name_span)
            }
            Fields::Nothing => self.unknown_field(&name, name_span),
        }
    }

    fn no_more(&mut self, rest: &[PathMember], name: &str) -> L<()> {
        if let Some(m) = rest.first() {
            let (n, s) = self.member_name(m)?;
            return self.error(
                Diagnostic::error("unknown_field", format!("`{name}` has no field `{n}`"), s)
                    .with_label("not a struct"),
            );
        }
        Some(())
    }

    /// The names `$ctx.` offers here, for suggestions and completion.
    pub fn field_names(&self) -> Vec<String> {
        field_names(self.fields)
    }

    fn unknown_field(&mut self, name: &str, span: Span) -> L<Expr> {
        let names = self.field_names();
        let mut d = Diagnostic::error(
            "unknown_field",
            format!("this probe has no field `{name}`"),
            span,
        )
        .with_label("unknown field");
        let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(s) = super::suggest::did_you_mean(candidates.iter().copied(), name) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        let list: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !COMMON_FIELDS.contains(n))
            .collect();
        if !list.is_empty() {
            d = d.with_help(format!("fields here: {}", list.join(", ")));
        }
        d = d.with_help(format!("every probe has: {}", COMMON_FIELDS.join(", ")));
        self.error(d)
    }

    fn tracepoint_field(&mut self, field: &Field, user_strings: bool, span: Span) -> L<Expr> {
        let offset = field.offset;
        match field.kind {
            FieldKind::Int { signed } => {
                let Some(ty) = int_of_size(field.size as u32, signed) else {
                    return self.field_unreadable(field, span);
                };
                Some(Expr::new(
                    ExprKind::Ctx(CtxRead::Field { offset, ty }),
                    Ty::Int(ty),
                    span,
                ))
            }
            FieldKind::Ptr => Some(Expr::new(
                ExprKind::Ctx(CtxRead::Field {
                    offset,
                    ty: IntTy::U64,
                }),
                Ty::Int(IntTy::U64),
                span,
            )),
            FieldKind::CharPtr => {
                let addr = Expr::new(
                    ExprKind::Ctx(CtxRead::Field {
                        offset,
                        ty: IntTy::U64,
                    }),
                    Ty::Int(IntTy::U64),
                    span,
                );
                let space = if user_strings {
                    AddrSpace::User
                } else {
                    AddrSpace::Auto
                };
                Some(Expr::new(
                    ExprKind::ReadStr {
                        space,
                        addr: Box::new(addr),
                    },
                    Ty::Str { cap: self.strlen },
                    span,
                ))
            }
            FieldKind::DataLocStr => Some(Expr::new(
                ExprKind::Ctx(CtxRead::DataLocStr { offset }),
                Ty::Str { cap: self.strlen },
                span,
            )),
            FieldKind::CharArray { len } => Some(Expr::new(
                ExprKind::Ctx(CtxRead::InlineStr { offset, len }),
                Ty::Str { cap: len.max(1) },
                span,
            )),
            FieldKind::Array { .. } => self.field_unreadable(field, span),
        }
    }

    /// Element `index` of an integer array field of a tracepoint record: `$ctx.args.2`.
    fn tracepoint_element(
        &mut self,
        field: &Field,
        len: u16,
        index: Option<&PathMember>,
        span: Span,
    ) -> L<Expr> {
        let element = field.size / len.max(1);
        let c_type = field.c_type.trim_start_matches("const ").trim();
        let Some(ty) = int_of_size(element as u32, tracefs::is_signed(c_type)) else {
            return self.field_unreadable(field, span);
        };
        let Some(&PathMember::Int { val, span: at, .. }) = index else {
            return self.error(
                Diagnostic::error(
                    "whole_context",
                    format!(
                        "`{}` is an array of {len} `{}`; read one element",
                        field.name, field.c_type
                    ),
                    span,
                )
                .with_label("an array")
                .with_help(format!("e.g. `$ctx.{}.0`", field.name)),
            );
        };
        let index = self.index_in(val, len as u64, &field.name, self.sp(at))?;
        Some(Expr::new(
            ExprKind::Ctx(CtxRead::Field {
                offset: field.offset + index as u16 * element,
                ty,
            }),
            Ty::Int(ty),
            span,
        ))
    }

    /// Checks a constant array index against the array's length.
    fn index_in(&mut self, index: usize, len: u64, array: &str, span: Span) -> L<u64> {
        if (index as u64) < len {
            return Some(index as u64);
        }
        self.error(
            Diagnostic::error(
                "index_out_of_bounds",
                format!("`{array}` has {len} elements; index {index} is past its end"),
                span,
            )
            .with_label("out of bounds")
            .with_help(format!("indices go from 0 to {}", len.saturating_sub(1))),
        )
    }

    fn field_unreadable(&mut self, field: &Field, span: Span) -> L<Expr> {
        self.error(
            Diagnostic::error(
                "unsupported",
                format!(
                    "field `{}` of type `{}` cannot be read yet",
                    field.name, field.c_type
                ),
                span,
            )
            .with_label("unsupported field type")
            .with_help("integer, pointer and string fields can be read"),
        )
    }

    /// A BTF-typed value (`value` holds it as a raw `u64`), followed through `rest`.
    fn btf_value(
        &mut self,
        btf: &Btf,
        mut value: Expr,
        mut ty: TypeId,
        mut rest: &[PathMember],
        strings: AddrSpace,
        span: Span,
    ) -> L<Expr> {
        // `value` is the value itself; once we go through a pointer, `addr` holds the address
        // of the current struct instead.
        let mut addr: Option<Expr> = None;
        // The member last stepped into, to name arrays in errors.
        let mut last_member = String::new();
        loop {
            let resolved = btf.resolve(ty);
            let Some(m) = rest.first() else {
                // The end of the path: produce the value.
                return match addr {
                    None => self.btf_scalar(btf, value, ty, strings, span),
                    Some(a) => self.btf_read(btf, a, ty, span),
                };
            };
            // `.N` on an array member: the element at a constant index.
            if let (
                &PathMember::Int { val, span: at, .. },
                Resolved::Array { elem, len },
                Some(a),
            ) = (m, &resolved, addr.as_ref())
            {
                let at = self.sp(at);
                let what = if last_member.is_empty() {
                    btf.describe(ty)
                } else {
                    std::mem::take(&mut last_member)
                };
                let index = self.index_in(val, *len as u64, &what, at)?;
                let Some(size) = btf.size_of(*elem) else {
                    return self.error(Diagnostic::error(
                        "unsupported",
                        format!("the elements of `{what}` have no known size"),
                        at,
                    ));
                };
                addr = Some(offset_addr(a.clone(), (index * size as u64) as i64, span));
                ty = *elem;
                rest = &rest[1..];
                continue;
            }
            let (member_name, member_span) = self.member_name(m)?;
            let member_name = member_name.to_string();
            // The struct being accessed and its address.
            let (struct_ty, base) = match (&resolved, addr.take()) {
                (Resolved::Ptr { target }, None) => (*target, value.clone()),
                (Resolved::Struct { .. }, Some(a)) => (ty, a),
                (Resolved::Ptr { target }, Some(a)) => {
                    // A pointer member: load it, then continue at its target.
                    let loaded = Expr::new(
                        ExprKind::ReadInt {
                            space: AddrSpace::Kernel,
                            addr: Box::new(a),
                        },
                        Ty::Int(IntTy::U64),
                        span,
                    );
                    (*target, loaded)
                }
                _ => {
                    return self.error(
                        Diagnostic::error(
                            "unknown_field",
                            format!("`{}` is not a struct or a pointer to one; it has no field `{member_name}`", btf.describe(ty)),
                            member_span,
                        )
                        .with_label("no fields here"),
                    );
                }
            };
            if !matches!(btf.resolve(struct_ty), Resolved::Struct { .. }) {
                return self.error(
                    Diagnostic::error(
                        "unknown_field",
                        format!("`{}` has no fields", btf.describe(struct_ty)),
                        member_span,
                    )
                    .with_label("not a struct"),
                );
            }
            let Some(member) = btf.member(struct_ty, &member_name) else {
                let names: Vec<String> = btf
                    .members(struct_ty)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| m.name)
                    .filter(|n| !n.is_empty())
                    .collect();
                let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut d = Diagnostic::error(
                    "unknown_field",
                    format!("`{}` has no field `{member_name}`", btf.describe(struct_ty)),
                    member_span,
                )
                .with_label("unknown field");
                if let Some(s) =
                    super::suggest::did_you_mean(candidates.iter().copied(), &member_name)
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                return self.error(d);
            };
            if member.bit_size != 0 || member.bit_offset % 8 != 0 {
                return self.error(
                    Diagnostic::error(
                        "unsupported",
                        format!("`{member_name}` is a bitfield"),
                        member_span,
                    )
                    .with_label("bitfields cannot be read yet"),
                );
            }
            let offset = (member.bit_offset / 8) as i64;
            let member_addr = offset_addr(base, offset, span);
            addr = Some(member_addr);
            ty = member.ty;
            last_member = member_name;
            value = Expr::int(0, IntTy::U64, span);
            rest = &rest[1..];
        }
    }

    /// A BTF-typed value held directly (an argument or a return value).
    fn btf_scalar(
        &mut self,
        btf: &Btf,
        value: Expr,
        ty: TypeId,
        strings: AddrSpace,
        span: Span,
    ) -> L<Expr> {
        match btf.resolve(ty) {
            Resolved::Int {
                bytes,
                signed,
                is_bool,
                ..
            } => {
                if is_bool {
                    let zero = Expr::int(0, IntTy::U64, span);
                    return Some(Expr::new(
                        ExprKind::Cmp(CmpOp::Ne, Box::new(value), Box::new(zero)),
                        Ty::Bool,
                        span,
                    ));
                }
                self.sized_int(btf, ty, bytes, signed, span)
                    .map(|it| coerce(value, Ty::Int(it)))
            }
            Resolved::Enum { bytes, signed } => self
                .sized_int(btf, ty, bytes, signed, span)
                .map(|it| coerce(value, Ty::Int(it))),
            Resolved::Ptr { target } if is_char(btf, target) => Some(Expr::new(
                ExprKind::ReadStr {
                    space: strings,
                    addr: Box::new(value),
                },
                Ty::Str { cap: self.strlen },
                span,
            )),
            Resolved::Ptr { .. } => Some(value),
            other => self.error(
                Diagnostic::error(
                    "unsupported",
                    format!("a value of type `{}` cannot be read", btf.describe(ty)),
                    span,
                )
                .with_label(format!("{other:?}").to_lowercase())
                .with_help("read one of its fields: `.field`"),
            ),
        }
    }

    /// The integer type of a BTF integer or enum; odd sizes (e.g. `__int128`) cannot be read.
    fn sized_int(
        &mut self,
        btf: &Btf,
        ty: TypeId,
        bytes: u32,
        signed: bool,
        span: Span,
    ) -> L<IntTy> {
        match int_of_size(bytes, signed) {
            Some(it) => Some(it),
            None => self.error(
                Diagnostic::error(
                    "unsupported",
                    format!(
                        "`{}` is {bytes} bytes wide; integers of 1, 2, 4 or 8 bytes can be read",
                        btf.describe(ty)
                    ),
                    span,
                )
                .with_label("unsupported width"),
            ),
        }
    }

    /// A BTF-typed value in kernel memory at `addr`.
    fn btf_read(&mut self, btf: &Btf, addr: Expr, ty: TypeId, span: Span) -> L<Expr> {
        let read_int = |it: IntTy, addr: Expr| {
            Expr::new(
                ExprKind::ReadInt {
                    space: AddrSpace::Kernel,
                    addr: Box::new(addr),
                },
                Ty::Int(it),
                span,
            )
        };
        match btf.resolve(ty) {
            Resolved::Int { bytes, signed, .. } | Resolved::Enum { bytes, signed } => {
                let Some(it) = int_of_size(bytes, signed) else {
                    return self.error(Diagnostic::error(
                        "unsupported",
                        format!("`{}` has an odd size", btf.describe(ty)),
                        span,
                    ));
                };
                Some(read_int(it, addr))
            }
            Resolved::Ptr { target } if is_char(btf, target) => {
                let ptr = read_int(IntTy::U64, addr);
                Some(Expr::new(
                    ExprKind::ReadStr {
                        space: AddrSpace::Kernel,
                        addr: Box::new(ptr),
                    },
                    Ty::Str { cap: self.strlen },
                    span,
                ))
            }
            Resolved::Ptr { .. } => Some(read_int(IntTy::U64, addr)),
            Resolved::Array { elem, len } if is_char(btf, elem) => Some(Expr::new(
                ExprKind::ReadStr {
                    space: AddrSpace::Kernel,
                    addr: Box::new(addr),
                },
                Ty::Str {
                    cap: len.clamp(1, 4096) as u16,
                },
                span,
            )),
            _ => self.error(
                Diagnostic::error(
                    "unsupported",
                    format!(
                        "a value of type `{}` cannot be read as a whole",
                        btf.describe(ty)
                    ),
                    span,
                )
                .with_label("not a scalar")
                .with_help("read one of its fields: `.field`"),
            ),
        }
    }
}

/// `base + offset`, folding the constant into an existing `x + c` (embedded structs).
fn offset_addr(base: Expr, offset: i64, span: Span) -> Expr {
    if offset == 0 {
        return base;
    }
    if let ExprKind::Binary(BinOp::Add, x, c) = &base.kind
        && let ExprKind::Int(c) = c.kind
    {
        return offset_addr((**x).clone(), c + offset, span);
    }
    Expr::new(
        ExprKind::Binary(
            BinOp::Add,
            Box::new(base),
            Box::new(Expr::int(offset, IntTy::U64, span)),
        ),
        Ty::Int(IntTy::U64),
        span,
    )
}

fn is_char(btf: &Btf, ty: TypeId) -> bool {
    matches!(
        btf.resolve(ty),
        Resolved::Int {
            bytes: 1,
            is_char: true,
            ..
        }
    )
}

fn arg_index(name: &str) -> Option<u8> {
    let n: u8 = name.strip_prefix("arg")?.parse().ok()?;
    (n < 6).then_some(n)
}

fn int_of_size(bytes: u32, signed: bool) -> Option<IntTy> {
    matches!(bytes, 1 | 2 | 4 | 8).then(|| IntTy::new(bytes as u8, signed))
}

fn builtin(b: Builtin, span: Span) -> Expr {
    let ty = match b {
        Builtin::Comm => Ty::Str { cap: 16 },
        Builtin::Ktime => Ty::Int(IntTy::U64),
        Builtin::Pid | Builtin::Tid | Builtin::Uid | Builtin::Gid | Builtin::Cpu => {
            Ty::Int(IntTy::U32)
        }
    };
    Expr::new(ExprKind::Builtin(b), ty, span)
}

fn str_literal(s: &str, span: Span) -> Expr {
    let bytes = s.as_bytes().to_vec();
    let cap = (bytes.len() + 1).min(u16::MAX as usize) as u16;
    Expr::new(ExprKind::Str(bytes), Ty::Str { cap }, span)
}

fn is_literal(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Int(_))
}

/// The smallest and largest value of `t`.
fn int_range(t: IntTy) -> (i128, i128) {
    let bits = t.bytes as u32 * 8;
    if t.signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    }
}

/// Whether the literal `v` is a value of `t`.
fn int_fits(v: i64, t: IntTy) -> bool {
    let (lo, hi) = int_range(t);
    (lo..=hi).contains(&(v as i128))
}

/// Whether `e` is an integer literal that `t` can hold.
fn literal_fits(e: &Expr, t: IntTy) -> bool {
    matches!(e.kind, ExprKind::Int(v) if int_fits(v, t))
}

fn is_nonneg_literal(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Int(v) if v >= 0)
}

fn same_kind(a: Ty, b: Ty) -> bool {
    matches!(
        (a, b),
        (Ty::Int(_), Ty::Int(_)) | (Ty::Bool, Ty::Bool) | (Ty::Str { .. }, Ty::Str { .. })
    )
}

/// Gives `e` type `ty`: literals are retyped, other integers cast, strings keep their
/// capacity unless a buffer of another size needs them.
fn coerce(mut e: Expr, ty: Ty) -> Expr {
    if e.ty == ty {
        return e;
    }
    match (&e.kind, ty) {
        (ExprKind::Int(_), Ty::Int(_)) => {
            e.ty = ty;
            e
        }
        (_, Ty::Int(_)) if matches!(e.ty, Ty::Int(_)) => {
            let span = e.span;
            Expr::new(ExprKind::Cast(Box::new(e)), ty, span)
        }
        _ => e,
    }
}

/// A user-facing type name.
pub fn describe(ty: Ty) -> String {
    match ty {
        Ty::Int(i) => format!("an integer ({})", i.name()),
        Ty::Bool => "a bool".into(),
        Ty::Str { .. } => "a string".into(),
    }
}

fn type_mismatch(expected: Ty, found: Ty, span: Span) -> Diagnostic {
    Diagnostic::error(
        "type_mismatch",
        format!("expected {}, found {}", describe(expected), describe(found)),
        span,
    )
    .with_label(describe(found).to_string())
}

/// The names `$ctx.` offers for `fields`, common fields first.
pub fn field_names(fields: &Fields) -> Vec<String> {
    let mut names: Vec<String> = COMMON_FIELDS.iter().map(|s| s.to_string()).collect();
    match fields {
        Fields::Tracepoint { format, .. } => {
            names.extend(format.fields.iter().map(|f| f.name.clone()))
        }
        Fields::Btf { params, ret, .. } => {
            names.extend(
                params
                    .iter()
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty()),
            );
            names.extend((0..params.len().min(6)).map(|i| format!("arg{i}")));
            if ret.is_some() {
                names.push("retval".into());
            }
        }
        Fields::Registers { ret } => {
            names.extend((0..6).map(|i| format!("arg{i}")));
            if *ret {
                names.push("retval".into());
            }
        }
        Fields::Known { function, ret } => {
            names.extend(
                function
                    .fields
                    .iter()
                    .filter(|(_, v)| !*ret || v.at_return())
                    .map(|(n, _)| n.to_string()),
            );
            names.extend((0..6).map(|i| format!("arg{i}")));
            names.push("retval".into());
        }
        Fields::Profile => names.push("ip".into()),
        Fields::Nothing => {}
    }
    names
}
