//! A compact text form of the probe IR, for golden tests and `check --dump ir`.
//!
//! Locals print as `$0`, context reads as `ctx.…`, types after a colon where they matter.

use std::fmt::{self, Write};

use crate::ir::{
    AddrSpace, AggDecl, BinOp, Builtin, CmpOp, CtxRead, Expr, ExprKind, Module, Probe, StmtKind,
    StrOp, Ty, UnOp,
};

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, agg) in self.aggregations.iter().enumerate() {
            writeln!(f, "{}", agg_decl(i, agg))?;
        }
        for probe in &self.probes {
            write!(f, "{probe}")?;
        }
        Ok(())
    }
}

fn agg_decl(index: usize, agg: &AggDecl) -> String {
    let key: Vec<String> = agg
        .key
        .iter()
        .map(|(n, t)| format!("{n}: {}", t.name()))
        .collect();
    let kind = match agg.kind {
        crate::ir::AggKind::Lhist { min, max, step } => format!("lhist({min}, {max}, {step})"),
        k => k.name().to_string(),
    };
    format!(
        "agg{index} {:?} = {kind}{} by [{}] (probe {})",
        agg.name,
        if agg.signed { " signed" } else { "" },
        key.join(", "),
        agg.probe
    )
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "probe {:?} on {}", self.name, self.attach.describe())?;
        for (i, ty) in self.locals.iter().enumerate() {
            writeln!(f, "  local ${i}: {}", ty.name())?;
        }
        let mut out = String::new();
        stmts(&mut out, &self.body, 1);
        f.write_str(&out)
    }
}

fn stmts(out: &mut String, body: &[crate::ir::Stmt], depth: usize) {
    let pad = "  ".repeat(depth);
    for s in body {
        match &s.kind {
            StmtKind::Let { local, value } => {
                let _ = writeln!(out, "{pad}let ${} = {}", local.0, expr(value));
            }
            StmtKind::Assign { local, value } => {
                let _ = writeln!(out, "{pad}${} = {}", local.0, expr(value));
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let _ = writeln!(out, "{pad}if {} {{", expr(cond));
                stmts(out, then, depth + 1);
                if !otherwise.is_empty() {
                    let _ = writeln!(out, "{pad}}} else {{");
                    stmts(out, otherwise, depth + 1);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            StmtKind::Return => {
                let _ = writeln!(out, "{pad}return");
            }
            StmtKind::Emit { fields } => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(n, e)| format!("{n}: {}", expr(e)))
                    .collect();
                let _ = writeln!(out, "{pad}emit {{{}}}", fields.join(", "));
            }
            StmtKind::Aggregate { agg, key, value } => {
                let key: Vec<String> = key.iter().map(expr).collect();
                let value = value
                    .as_ref()
                    .map_or(String::new(), |v| format!(" <- {}", expr(v)));
                let _ = writeln!(out, "{pad}agg{}[{}]{value}", agg.0, key.join(", "));
            }
        }
    }
}

/// One expression in the compact form.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(v) => format!("{v}:{}", e.ty.name()),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
        ExprKind::Local(l) => format!("${}", l.0),
        ExprKind::Ctx(read) => match read {
            CtxRead::Field { offset, ty } => format!("ctx.field@{offset}:{}", ty.name()),
            CtxRead::DataLocStr { offset } => format!("ctx.data_loc@{offset}:{}", e.ty.name()),
            CtxRead::InlineStr { offset, len } => format!("ctx.chars@{offset}[{len}]"),
            CtxRead::Arg(n) => format!("ctx.arg{n}:{}", e.ty.name()),
            CtxRead::RetVal => format!("ctx.retval:{}", e.ty.name()),
            CtxRead::Ip => format!("ctx.ip:{}", e.ty.name()),
        },
        ExprKind::Builtin(b) => match b {
            Builtin::Pid => "pid()",
            Builtin::Tid => "tid()",
            Builtin::Uid => "uid()",
            Builtin::Gid => "gid()",
            Builtin::Comm => "comm()",
            Builtin::Ktime => "ktime()",
            Builtin::Cpu => "cpu()",
        }
        .to_string(),
        ExprKind::ReadInt { space, addr } => {
            format!(
                "read_{}({}):{}",
                space_name(*space),
                expr(addr),
                e.ty.name()
            )
        }
        ExprKind::ReadStr { space, addr } => {
            format!(
                "read_{}_str({}):{}",
                space_name(*space),
                expr(addr),
                e.ty.name()
            )
        }
        ExprKind::Unary(op, a) => {
            let op = match op {
                UnOp::Neg => "-",
                UnOp::Not => "not ",
                UnOp::BitNot => "~",
            };
            format!("{op}{}", expr(a))
        }
        ExprKind::Binary(op, a, b) => {
            let op = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Mod => "mod",
                BinOp::BitAnd => "bit-and",
                BinOp::BitOr => "bit-or",
                BinOp::BitXor => "bit-xor",
                BinOp::Shl => "bit-shl",
                BinOp::Shr => "bit-shr",
            };
            format!("({} {op} {}):{}", expr(a), expr(b), e.ty.name())
        }
        ExprKind::Cmp(op, a, b) => {
            let op = match op {
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            format!("({} {op} {})", expr(a), expr(b))
        }
        ExprKind::StrMatch(op, s, lit) => {
            let op = match op {
                StrOp::Eq => "==",
                StrOp::Ne => "!=",
                StrOp::StartsWith => "starts-with",
                StrOp::EndsWith => "ends-with",
            };
            format!("({} {op} {:?})", expr(s), String::from_utf8_lossy(lit))
        }
        ExprKind::And(a, b) => format!("({} and {})", expr(a), expr(b)),
        ExprKind::Or(a, b) => format!("({} or {})", expr(a), expr(b)),
        ExprKind::Cast(a) => format!("({} as {})", expr(a), e.ty.name()),
    }
}

fn space_name(space: AddrSpace) -> &'static str {
    match space {
        AddrSpace::User => "user",
        AddrSpace::Kernel => "kernel",
        AddrSpace::Auto => "any",
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
