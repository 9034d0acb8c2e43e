//! The typed probe IR: the input of codegen.
//!
//! The front end lowers each probe closure to a [`Probe`]; every node carries the span of the
//! source text it came from, so diagnostics and verifier rejections can point back at it.
//! Types are settled here: codegen trusts them and never re-checks user intent.

use crate::program::Attach;
use crate::span::Span;

/// An integer type: width in bytes (1, 2, 4, 8) and signedness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntTy {
    pub bytes: u8,
    pub signed: bool,
}

impl IntTy {
    pub const U8: IntTy = IntTy::new(1, false);
    pub const U16: IntTy = IntTy::new(2, false);
    pub const U32: IntTy = IntTy::new(4, false);
    pub const U64: IntTy = IntTy::new(8, false);
    pub const I8: IntTy = IntTy::new(1, true);
    pub const I16: IntTy = IntTy::new(2, true);
    pub const I32: IntTy = IntTy::new(4, true);
    pub const I64: IntTy = IntTy::new(8, true);

    pub const fn new(bytes: u8, signed: bool) -> IntTy {
        IntTy { bytes, signed }
    }

    /// The type's name in the Rust style users see in diagnostics (`u32`, `i64`).
    pub fn name(&self) -> String {
        format!(
            "{}{}",
            if self.signed { 'i' } else { 'u' },
            self.bytes as u32 * 8
        )
    }
}

/// The type of an IR value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Int(IntTy),
    Bool,
    /// A NUL-terminated string in a buffer of `cap` bytes (the NUL included).
    Str {
        cap: u16,
    },
}

impl Ty {
    /// Bytes the value takes in a record or a key.
    pub fn size(&self) -> u32 {
        match self {
            Ty::Int(i) => i.bytes as u32,
            Ty::Bool => 1,
            Ty::Str { cap } => *cap as u32,
        }
    }

    /// Alignment in a record or a key; strings are 8-aligned so they copy in words.
    pub fn align(&self) -> u32 {
        match self {
            Ty::Int(i) => i.bytes as u32,
            Ty::Bool => 1,
            Ty::Str { .. } => 8,
        }
    }

    pub fn is_str(&self) -> bool {
        matches!(self, Ty::Str { .. })
    }

    pub fn name(&self) -> String {
        match self {
            Ty::Int(i) => i.name(),
            Ty::Bool => "bool".into(),
            Ty::Str { cap } => format!("string[{cap}]"),
        }
    }
}

/// Index of a local variable in [`Probe::locals`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalId(pub u32);

/// Index of an aggregation in [`Module::aggregations`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggId(pub u32);

/// Which address space a pointer read targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrSpace {
    User,
    Kernel,
    /// Try user memory first and fall back to kernel memory when that read faults. For
    /// kernel functions whose BTF does not say whether a pointer is a user one.
    Auto,
}

/// A read from the program's context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtxRead {
    /// A tracefs event field at `offset` (tracepoint programs).
    Field { offset: u16, ty: IntTy },
    /// A `__data_loc char[]` field whose 32-bit locator sits at `offset` (tracepoints).
    DataLocStr { offset: u16 },
    /// A fixed `char name[len]` array inside the event record at `offset` (tracepoints).
    InlineStr { offset: u16, len: u16 },
    /// Function argument `n`: a `pt_regs` register for kprobes, uprobes and perf events,
    /// `args[n]` for raw tracepoints, tp_btf, fentry and fexit. Truncated to the
    /// expression's type.
    Arg(u8),
    /// The return value in `pt_regs` (kretprobe, uretprobe). fexit reads it as
    /// `Arg(number of arguments)`.
    RetVal,
    /// The instruction pointer in `pt_regs` (perf events, kprobes, uprobes).
    Ip,
}

/// Process and time facts every probe can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// Thread group id (the user-space process id).
    Pid,
    /// Thread id.
    Tid,
    Uid,
    Gid,
    /// The current task's command name (`string[16]`).
    Comm,
    /// Monotonic time in nanoseconds.
    Ktime,
    Cpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    /// Logical not of a bool.
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// Division truncating toward zero; division by zero gives 0 (eBPF semantics).
    Div,
    /// Remainder with the sign of the dividend; modulo zero gives the dividend.
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    /// Logical shift for unsigned, arithmetic for signed operands.
    Shr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// String tests against a literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrOp {
    Eq,
    Ne,
    StartsWith,
    EndsWith,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// An integer literal, already in range of `ty`.
    Int(i64),
    Bool(bool),
    /// A string literal, without its NUL.
    Str(Vec<u8>),
    Local(LocalId),
    Ctx(CtxRead),
    Builtin(Builtin),
    /// Reads an integer of the expression's type from the address `addr` evaluates to.
    ReadInt {
        space: AddrSpace,
        addr: Box<Expr>,
    },
    /// Reads a NUL-terminated string (at most `cap - 1` bytes) from `addr`.
    ReadStr {
        space: AddrSpace,
        addr: Box<Expr>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// Integer or bool comparison; signed when either side is signed. Two strings may be
    /// compared with `Eq` and `Ne`.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// A string test against a literal.
    StrMatch(StrOp, Box<Expr>, Vec<u8>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// Converts an integer to the expression's integer type (truncating or extending).
    Cast(Box<Expr>),
}

impl Expr {
    pub fn new(kind: ExprKind, ty: Ty, span: Span) -> Expr {
        Expr { kind, ty, span }
    }

    pub fn int(value: i64, ty: IntTy, span: Span) -> Expr {
        Expr::new(ExprKind::Int(value), Ty::Int(ty), span)
    }

    /// Calls `f` on this expression and every sub-expression, parents first.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::ReadInt { addr, .. } | ExprKind::ReadStr { addr, .. } => addr.walk(f),
            ExprKind::Unary(_, e) | ExprKind::StrMatch(_, e, _) | ExprKind::Cast(e) => e.walk(f),
            ExprKind::Binary(_, a, b)
            | ExprKind::Cmp(_, a, b)
            | ExprKind::And(a, b)
            | ExprKind::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            ExprKind::Int(_)
            | ExprKind::Bool(_)
            | ExprKind::Str(_)
            | ExprKind::Local(_)
            | ExprKind::Ctx(_)
            | ExprKind::Builtin(_) => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StmtKind {
    /// Declares and initialises a local.
    Let { local: LocalId, value: Expr },
    /// Assigns to a declared local.
    Assign { local: LocalId, value: Expr },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// Ends the probe for this event.
    Return,
    /// Sends one record to user space; each field becomes a column.
    Emit { fields: Vec<(String, Expr)> },
    /// Updates an in-kernel aggregation. `key` matches the aggregation's key types;
    /// `value` is absent only for `count`.
    Aggregate {
        agg: AggId,
        key: Vec<Expr>,
        value: Option<Expr>,
    },
}

impl Stmt {
    /// Calls `f` on every expression of this statement and of the statements inside it.
    pub fn walk_exprs(&self, f: &mut dyn FnMut(&Expr)) {
        match &self.kind {
            StmtKind::Let { value, .. } | StmtKind::Assign { value, .. } => value.walk(f),
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                cond.walk(f);
                for s in then.iter().chain(otherwise) {
                    s.walk_exprs(f);
                }
            }
            StmtKind::Return => {}
            StmtKind::Emit { fields } => {
                for (_, e) in fields {
                    e.walk(f);
                }
            }
            StmtKind::Aggregate { key, value, .. } => {
                for e in key.iter().chain(value) {
                    e.walk(f);
                }
            }
        }
    }
}

/// One probe: where it attaches and what it does on every hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// A short name unique in the module, shown to users (`p0`, `openat`).
    pub name: String,
    pub attach: Attach,
    /// The type of every local, indexed by [`LocalId`].
    pub locals: Vec<Ty>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

impl Probe {
    /// True when some expression reads the program's context (fields, arguments, strings).
    pub fn reads_ctx(&self) -> bool {
        let mut reads = false;
        for s in &self.body {
            s.walk_exprs(&mut |e| reads |= matches!(e.kind, ExprKind::Ctx(_)));
        }
        reads
    }
}

/// What an aggregation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggKind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// Power-of-two histogram.
    Hist,
    /// Linear histogram of `[min, max)` in buckets of `step`.
    Lhist {
        min: i64,
        max: i64,
        step: i64,
    },
}

impl AggKind {
    pub fn name(&self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Avg => "avg",
            AggKind::Hist => "hist",
            AggKind::Lhist { .. } => "lhist",
        }
    }

    pub fn takes_value(&self) -> bool {
        !matches!(self, AggKind::Count)
    }
}

/// A keyed in-kernel aggregation; updated by [`StmtKind::Aggregate`] statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggDecl {
    /// The name users see (`count`, `bytes`).
    pub name: String,
    /// The probe that owns it (index into [`Module::probes`]).
    pub probe: usize,
    pub kind: AggKind,
    /// Key columns: names and types. Empty for an unkeyed aggregation.
    pub key: Vec<(String, Ty)>,
    /// Whether the aggregated values are signed.
    pub signed: bool,
    pub span: Span,
}

/// How the ring buffer wakes its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Wakeup {
    /// Never wake; the reader polls on a short timer. Wake-ups cost microseconds each in a VM.
    #[default]
    Poll,
    /// The kernel's adaptive wake-up (wakes when the reader has caught up).
    Adaptive,
}

/// Knobs that are not part of any single probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// Ring buffer size in bytes (a power of two and a multiple of the page size).
    pub ringbuf_bytes: u32,
    /// Maximum distinct keys per aggregation.
    pub max_keys: u32,
    pub wakeup: Wakeup,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ringbuf_bytes: 4 << 20,
            max_keys: 10_240,
            wakeup: Wakeup::Poll,
        }
    }
}

/// Everything compiled into one object: probes share the ring buffer and the maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module {
    pub probes: Vec<Probe>,
    pub aggregations: Vec<AggDecl>,
    pub options: Options,
}
